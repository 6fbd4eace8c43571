/**
 * `npm start`: runs a real job on the local cloud once the local runner lands (issues 3 to 5). Until then it
 * says so plainly instead of pretending, and points at what works today.
 */
const message = `bedrock-batch-pipeline: the local runner is not built yet.

What works today is the domain core in shared/ (input parsing, model resolution, request building,
long-context routing, the failure table, cost and output records), proven by the tests:

  npm ci && npm test

'npm start' will run a whole batch on this machine (local S3, SQS, DynamoDB and a Bedrock stand-in)
when the local cloud (issue 3), the pipeline (issue 4) and the CLI (issue 5) land.
`;

process.stdout.write(message);
