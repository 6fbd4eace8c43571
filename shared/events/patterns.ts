/**
 * The EventBridge rule that starts a job: S3 "Object Created" in the pipeline's bucket for any key under
 * inputs/. Every upload there is answered: a file that is not JSON Lines gets a "Batch Job Failed" event
 * saying why, not silence. The CDK stack deploys exactly this pattern and the local shim matches it.
 */
export function inputObjectCreatedPattern(bucketName: string) {
  return {
    source: ['aws.s3'],
    'detail-type': ['Object Created'],
    detail: {
      bucket: { name: [bucketName] },
      object: { key: [{ prefix: 'inputs/' }] },
    },
  };
}
