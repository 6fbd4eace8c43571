/**
 * Bedrock's on-demand service tiers a job may ask for, sent with each call: default (Standard), priority
 * (faster output at a premium) and flex (discounted, served at lower priority). They share the on-demand
 * quota; support is per model (catalog data), and a tier a model does not take is refused, never replaced.
 */
export const serviceTiers = ['default', 'priority', 'flex'] as const;
export type ServiceTier = (typeof serviceTiers)[number];

export const DEFAULT_SERVICE_TIER: ServiceTier = 'default';

/** How a job remembers that Bedrock refused a tier for a model: `<tier>#<model id>`. */
export function tierRefusalKey(modelId: string, tier: ServiceTier): string {
  return `${tier}#${modelId}`;
}

/** A tier the response names, when it is one of ours (Bedrock also knows `reserved`, which we never ask for). */
export function serviceTierOf(value: unknown): ServiceTier | undefined {
  return (serviceTiers as readonly unknown[]).includes(value) ? (value as ServiceTier) : undefined;
}
