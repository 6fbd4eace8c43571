// A function's built bundle, loaded as the Lambda Node.js runtime loads it: a plain `node` with no loader,
// the module file the handler setting names (index.handler: index.mjs, export handler), imported once at
// start (the cold start, where a bad setting fails), then invoked once per request read from stdin. Replies
// go to file descriptor 3, so what the function logs on stdout stays apart.
import { randomUUID } from 'node:crypto';
import dns from 'node:dns';
import { createWriteStream, existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const [directory, handlerSetting, functionName, timeoutMs] = process.argv.slice(2);

// The local cloud's queue URLs name hosts under .localhost (sqs.us-west-2.localhost), which RFC 6761 reserves
// for loopback but this machine's resolver does not map; on AWS, DNS answers for the SQS host the same way.
const lookup = dns.lookup;
dns.lookup = (hostname, options, callback) => {
  const done = typeof options === 'function' ? options : callback;
  const all = typeof options === 'object' && options?.all === true;
  if (!hostname.endsWith('.localhost')) return lookup(hostname, options, callback);
  return all ? done(null, [{ address: '127.0.0.1', family: 4 }]) : done(null, '127.0.0.1', 4);
};
const [moduleName, exportName] = handlerSetting.split('.');
const replies = createWriteStream('', { fd: 3 });
const file = ['.mjs', '.js', '.cjs']
  .map((extension) => path.join(directory, `${moduleName}${extension}`))
  .find((candidate) => existsSync(candidate));
if (file === undefined) throw new Error(`Runtime.ImportModuleError: no module ${moduleName} in ${directory}`);
const handler = (await import(pathToFileURL(file).href))[exportName];
if (typeof handler !== 'function')
  throw new Error(`Runtime.HandlerNotFound: ${handlerSetting} is not a function`);
replies.write(`${JSON.stringify({ ready: true })}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  const { id, event } = JSON.parse(line);
  const deadline = Date.now() + Number(timeoutMs);
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  handler(event, context).then(
    (result) => replies.write(`${JSON.stringify({ id, result: result ?? null })}\n`),
    (error) =>
      replies.write(
        `${JSON.stringify({ id, error: { name: error?.name, message: String(error?.message ?? error) } })}\n`,
      ),
  );
}
