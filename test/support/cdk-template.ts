import type { Template } from 'aws-cdk-lib/assertions';

/** A statement of an IAM policy in a synthesised template. */
export interface PolicyStatement {
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Effect?: string;
}

/** A resource as a template's `findResources` gives it. */
type Resource = ReturnType<Template['findResources']>[string];

/** The pipeline functions of a template (those with a Powertools service name). */
export function pipelineFunctions(template: Template): Resource[] {
  return Object.values(template.findResources('AWS::Lambda::Function')).filter(
    (resource) => resource.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME !== undefined,
  );
}

/** The function whose Powertools service name is `name`. */
export function functionNamed(template: Template, name: string): Resource {
  const fn = pipelineFunctions(template).find(
    (resource) => resource.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === name,
  );
  if (fn === undefined) throw new Error(`no function has the service name ${name}`);
  return fn;
}

/** The logical id of a function's role. */
export function roleOf(fn: Resource): string {
  return (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
}

/** Every statement of the policies attached to a function's role. */
export function roleStatements(template: Template, fn: Resource): PolicyStatement[] {
  const role = roleOf(fn);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => (policy.Properties.Roles as Array<{ Ref: string }>).some((each) => each.Ref === role))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as PolicyStatement[]);
}
