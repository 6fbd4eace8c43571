/**
 * bedrock-batch-pipeline as a package: the CDK construct that deploys the pipeline, and the types of the files
 * and events it reads and writes. The command line is `bedrock-batch` (this package's bin).
 */
export { BedrockBatchPipeline, type PipelineFunctions } from './infra/bedrock-batch-pipeline.ts';
export type { BedrockBatchPipelineProps } from './infra/bedrock-batch-pipeline-props.ts';
export type { BucketOverrides, FunctionOverrides, LedgerTableOverrides } from './infra/escape-hatches.ts';
export type { UserCatalog } from './shared/catalog/user-catalog.ts';
export type { ServiceTier } from './shared/contract/service-tiers.ts';
export type {
  AnthropicInputLine,
  AnthropicOutputLine,
  BedrockInputLine,
  BedrockOutputLine,
  InputLine,
  MessagesRequest,
  MessagesResponse,
  OutputLine,
  PlainInputLine,
  PlainOutputLine,
} from './shared/formats/lines.ts';
export type { MessageBatch } from './shared/message-batches/message-batches.ts';
export { type SignedFetchOptions, signedFetch } from './shared/message-batches/signed-fetch.ts';
export type { CacheSummary, TierSummary } from './shared/output/manifest.ts';
export type { CompletionEventDetail, JobManifest } from './shared/pipeline/finalize.ts';
