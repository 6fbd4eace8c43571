import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface NotificationsProps {
  /** The events that end a job, one per job. */
  readonly endEventPattern: events.EventPattern;
  readonly notifyEmail?: string | undefined;
  /** An existing topic; its policy must let events.amazonaws.com publish. */
  readonly notifyTopicArn?: string | undefined;
}

/**
 * Tells people when a job ends (completed, canceled, superseded or failed): a rule on the default bus that
 * sends each end event, as a line a person reads, to an SNS topic with the address subscribed, or to a topic
 * the team has. Nothing is made when neither is given.
 */
export class Notifications extends Construct {
  readonly topic: sns.ITopic | undefined;

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    this.topic = topicOf(this, props);
    if (this.topic === undefined) return;
    const field = (path: string) => events.EventField.fromPath(path);
    new events.Rule(this, 'JobEnded', {
      description: 'Each job that ends, to the notification topic',
      eventPattern: props.endEventPattern,
      targets: [
        new targets.SnsTopic(this.topic, {
          message: events.RuleTargetInput.fromText(
            `${field('$.detail-type')}: job ${field('$.detail.jobId')} of ${field('$.detail.input')} ` +
              `ended ${field('$.detail.status')}. Output: ${field('$.detail.output')}. ` +
              `Reason: ${field('$.detail.reason')}.`,
          ),
        }),
      ],
    });
  }
}

function topicOf(scope: Construct, props: NotificationsProps): sns.ITopic | undefined {
  if (props.notifyTopicArn !== undefined) return sns.Topic.fromTopicArn(scope, 'Topic', props.notifyTopicArn);
  if (props.notifyEmail === undefined) return undefined;
  const topic = new sns.Topic(scope, 'JobEnds', { enforceSSL: true });
  topic.addSubscription(new subscriptions.EmailSubscription(props.notifyEmail));
  return topic;
}
