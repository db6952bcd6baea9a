// Drives openkms's Secrets Manager API with the AWS SDK for JavaScript v3, as an application
// would: the endpoint, Region and credentials come from the environment
// (OPENKMS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the SDK signs.
// Prints one JSON line with what it saw; exits non-zero on the first unexpected answer.
// Run by tests/secretsmanager/test_clients_js.py through scripts/js-client-test.sh.
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";

const endpoint = process.env.OPENKMS_ENDPOINT;
if (!endpoint) {
  console.error("OPENKMS_ENDPOINT is not set");
  process.exit(2);
}
const name = process.env.SECRET_NAME || `js-client/${Date.now()}`;
const client = new SecretsManagerClient({ endpoint, maxAttempts: 1 });

function check(condition, what) {
  if (!condition) {
    throw new Error(`unexpected: ${what}`);
  }
}

const created = await client.send(
  new CreateSecretCommand({ Name: name, SecretString: "first", Description: "from node" }),
);
check(created.ARN && created.ARN.includes(`:secret:${name}-`), `ARN ${created.ARN}`);
check(created.Name === name, `Name ${created.Name}`);

const first = await client.send(new GetSecretValueCommand({ SecretId: name }));
check(first.SecretString === "first", "first value");
check(first.VersionStages.includes("AWSCURRENT"), `stages ${first.VersionStages}`);
check(first.CreatedDate instanceof Date, "CreatedDate is a Date");

const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
const put = await client.send(new PutSecretValueCommand({ SecretId: created.ARN, SecretBinary: bytes }));
check(put.VersionId && put.VersionId !== created.VersionId, "a new version");

const second = await client.send(new GetSecretValueCommand({ SecretId: name }));
check(second.SecretBinary && Buffer.from(second.SecretBinary).equals(Buffer.from(bytes)), "binary");
const previous = await client.send(
  new GetSecretValueCommand({ SecretId: name, VersionStage: "AWSPREVIOUS" }),
);
check(previous.SecretString === "first", "AWSPREVIOUS is the first value");

const described = await client.send(new DescribeSecretCommand({ SecretId: name }));
check(described.Description === "from node", "Description");
const stages = described.VersionIdsToStages || {};
check((stages[put.VersionId] || []).includes("AWSCURRENT"), "DescribeSecret stages");

let listed = false;
let token;
do {
  const page = await client.send(
    new ListSecretsCommand({ Filters: [{ Key: "name", Values: [name] }], NextToken: token }),
  );
  listed ||= (page.SecretList || []).some((s) => s.Name === name && s.ARN === created.ARN);
  token = page.NextToken;
} while (token);
check(listed, "ListSecrets finds the secret");

let missing = "none";
try {
  await client.send(new GetSecretValueCommand({ SecretId: `${name}-does-not-exist` }));
} catch (err) {
  missing = err instanceof ResourceNotFoundException ? "ResourceNotFoundException" : err.name;
}
check(missing === "ResourceNotFoundException", `missing secret answered ${missing}`);

console.log(
  JSON.stringify({ ok: true, arn: created.ARN, versions: [created.VersionId, put.VersionId] }),
);
