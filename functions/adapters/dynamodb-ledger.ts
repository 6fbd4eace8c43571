import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Ledger } from '../../shared/core/ledger.ts';
import { DynamoDbJobLedger } from './dynamodb-job-ledger.ts';
import { DynamoDbRecordLedger } from './dynamodb-record-ledger.ts';
import type { LedgerOptions } from './ledger-writes.ts';

/** The whole ledger on one DynamoDB table: its jobs, and its records and record ids (see ledger-table.ts). */
export class DynamoDbLedger extends DynamoDbJobLedger implements Ledger {
  private readonly records: DynamoDbRecordLedger;

  constructor(documents: DynamoDBDocumentClient, tableName: string, options: LedgerOptions = {}) {
    super(documents, tableName, options);
    this.records = new DynamoDbRecordLedger(documents, tableName, options);
  }

  claimRecordIds: Ledger['claimRecordIds'] = (...call) => this.records.claimRecordIds(...call);
  doneRecords: Ledger['doneRecords'] = (...call) => this.records.doneRecords(...call);
  leaseRecord: Ledger['leaseRecord'] = (...call) => this.records.leaseRecord(...call);
  releaseRecord: Ledger['releaseRecord'] = (...call) => this.records.releaseRecord(...call);
  completeRecords: Ledger['completeRecords'] = (...call) => this.records.completeRecords(...call);
  countedRecords: Ledger['countedRecords'] = (...call) => this.records.countedRecords(...call);
  spentOn: Ledger['spentOn'] = (...call) => this.records.spentOn(...call);
}
