import type { Duration } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { pipelineAlarms } from './alarms.ts';
import { pipelineDashboard } from './dashboard.ts';

export interface MonitoringProps {
  readonly recordQueue: sqs.IQueue;
  readonly recordDeadLetters: sqs.IQueue;
  /** Finalizations that failed every retry. */
  readonly finalizeDeadLetters: sqs.IQueue;
  /** Upload and continuation events the enqueue function failed on every retry. */
  readonly enqueueFailures: sqs.IQueue;
  readonly functions: Readonly<
    Record<'enqueue' | 'worker' | 'finalizer' | 'sweeper' | 'batch', lambda.IFunction>
  >;
  /** The model ids the pipeline calls, for the per-model and AWS/Bedrock widgets. */
  readonly modelIds: readonly string[];
  /** The quota pools files may spread over (`<source region>#<model id>`), for the per-pool widget. */
  readonly pools: readonly string[];
  /** Oldest record older than this means the pipeline is not keeping up (or stuck). */
  readonly oldestMessageAlarmAge: Duration;
  /** The Message Batches API, when the stack serves it: its requests, errors and latency. */
  readonly messageBatchesApi?: apigwv2.HttpApi | undefined;
  readonly alarmEmail?: string | undefined;
  readonly alarmTopicArn?: string | undefined;
}

/** The dashboard people watch and the alarms that call them, each saying what to do. */
export class Monitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const topic = this.alarmTopic(props);
    this.alarms = pipelineAlarms(props).map((spec) => {
      const alarm = new cloudwatch.Alarm(this, spec.id, {
        metric: spec.metric,
        threshold: spec.threshold,
        evaluationPeriods: spec.evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: spec.description,
      });
      if (topic !== undefined) alarm.addAlarmAction(new actions.SnsAction(topic));
      return alarm;
    });
    this.dashboard = pipelineDashboard(this, props, this.alarms);
  }

  private alarmTopic(props: MonitoringProps): sns.ITopic | undefined {
    if (props.alarmTopicArn !== undefined)
      return sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn);
    if (props.alarmEmail === undefined) return undefined;
    const topic = new sns.Topic(this, 'Alarms', { enforceSSL: true });
    topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    return topic;
  }
}
