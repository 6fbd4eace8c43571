/**
 * The file formats the pipeline reads and writes, as types for the code of its users: what a line of an input
 * file may hold, and what a line of an output file holds, in each of the three forms.
 */

/** A Messages API request body, as Bedrock's InvokeModel takes it (`model` and `stream` are removed). */
export interface MessagesRequest {
  readonly max_tokens?: number;
  readonly messages: ReadonlyArray<{ readonly role: 'user' | 'assistant'; readonly content: unknown }>;
  readonly system?: string | readonly unknown[];
  readonly anthropic_beta?: readonly string[];
  readonly [field: string]: unknown;
}

/** Bedrock batch inference's record form. */
export interface BedrockInputLine {
  readonly recordId?: string;
  readonly modelInput: MessagesRequest;
}

/** Anthropic Message Batches' request form; `params.model` picks the model of the line. */
export interface AnthropicInputLine {
  readonly custom_id?: string;
  readonly params: MessagesRequest & { readonly model?: string };
}

/** The plain form: a prompt (or messages) and the few settings people set. An unknown field is an error. */
export interface PlainInputLine {
  readonly id?: string | number;
  readonly model?: string;
  readonly prompt?: string;
  readonly messages?: MessagesRequest['messages'];
  readonly system?: MessagesRequest['system'];
  readonly max_tokens?: number;
  readonly temperature?: number;
  readonly top_p?: number;
  readonly top_k?: number;
  readonly stop_sequences?: readonly string[];
}

export type InputLine = BedrockInputLine | AnthropicInputLine | PlainInputLine;

/** A Messages API response as Bedrock returns it; passed through untouched. */
export interface MessagesResponse {
  readonly content: readonly unknown[];
  readonly stop_reason?: string | null | undefined;
  readonly usage?: unknown;
  readonly [field: string]: unknown;
}

/** A Bedrock-form output line, as native batch inference writes it (`modelInput` echoed). */
export type BedrockOutputLine = {
  readonly recordId: string;
  readonly modelInput?: unknown;
} & (
  | { readonly modelOutput: MessagesResponse }
  | {
      readonly error: {
        readonly errorCode: number;
        readonly errorType: string;
        readonly errorMessage: string;
      };
    }
);

/** An Anthropic-form output line, as Message Batches results are. */
export interface AnthropicOutputLine {
  readonly custom_id: string;
  readonly result:
    | { readonly type: 'succeeded'; readonly message: MessagesResponse }
    | {
        readonly type: 'errored';
        readonly error: {
          readonly type: 'error';
          readonly error: { readonly type: string; readonly message: string };
        };
      }
    | { readonly type: 'canceled' | 'expired' };
}

/** A plain-form output line: the text, with the facts needed to trust it. */
export type PlainOutputLine = { readonly id: string; readonly line: number } & (
  | {
      readonly status: 'succeeded';
      readonly text: string;
      readonly stop_reason: string | null;
      readonly usage: unknown;
    }
  | { readonly status: 'errored'; readonly error: { readonly code: string; readonly message: string } }
  | { readonly status: 'canceled' | 'expired' }
);

export type OutputLine = BedrockOutputLine | AnthropicOutputLine | PlainOutputLine;
