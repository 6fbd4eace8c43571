/**
 * The EventBridge rule that starts a job: S3 "Object Created" in the pipeline's bucket for a key under
 * inputs/ ending in .jsonl. The CDK stack deploys exactly this pattern and the local shim matches it.
 * The wildcard sees the key as the event carries it (encoded), whose "inputs/" and ".jsonl" never change.
 */
export function inputObjectCreatedPattern(bucketName: string) {
  return {
    source: ['aws.s3'],
    'detail-type': ['Object Created'],
    detail: {
      bucket: { name: [bucketName] },
      object: { key: [{ wildcard: 'inputs/*.jsonl' }] },
    },
  };
}
