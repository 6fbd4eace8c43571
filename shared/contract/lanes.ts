/**
 * How a file's records reach Bedrock: on-demand (InvokeModel, record by record, within the token budget),
 * batch (Bedrock batch inference jobs at the batch price; what they fail runs on demand), or auto (batch when
 * the file is large enough and its deadline long enough, on demand otherwise).
 */
export const lanes = ['on-demand', 'batch', 'auto'] as const;
export type Lane = (typeof lanes)[number];

export const DEFAULT_LANE: Lane = 'on-demand';
