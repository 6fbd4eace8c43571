import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { listenDualProtocol } from './local/bedrock/dual-protocol-server.ts';

const server = await listenDualProtocol((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        v: req.httpVersion,
        url: req.url,
        len: body.length,
        auth: req.headers.authorization?.slice(0, 80),
      }),
    );
  });
});
console.log(server.endpoint);
const r1 = await fetch(`${server.endpoint}/model/x/invoke`, { method: 'POST', body: 'abc' });
console.log('fetch', await r1.text());
const client = new BedrockRuntimeClient({
  region: 'us-west-2',
  endpoint: server.endpoint,
  credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 's' },
});
console.log('handler', client.config.requestHandler?.constructor?.name);
const out = await client.send(
  new InvokeModelCommand({
    modelId: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    body: JSON.stringify({ a: 1 }),
    contentType: 'application/json',
  }),
);
console.log('sdk', new TextDecoder().decode(out.body));
client.destroy();
await server.close();
