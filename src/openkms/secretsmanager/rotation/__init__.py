"""Secret rotation (RotateSecret, CancelRotateSecret, the rotation function runner,
RotationRules scheduling): owned by the sm-rotation work of issue #19."""
