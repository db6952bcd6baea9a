"""Secret rotation without Lambda, to Lambda's contract: RotateSecret and CancelRotateSecret, the
rotation functions an operator maps RotationLambdaARNs to (an HTTPS endpoint or a local
executable), the runner that hosts an unmodified Lambda-style handler, and RotationRules
schedules (``rate()``, ``cron()``, ``AutomaticallyAfterDays``)."""
