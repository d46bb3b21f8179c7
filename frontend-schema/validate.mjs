#!/usr/bin/env node
// Validates the frontend's GraphQL documents (operations/*.graphql) against the generated
// schema (schema.graphql), so a schema change that breaks the web console fails CI.
//
//   node validate.mjs            check, print problems as file:line:column, exit 1 on any
//   node validate.mjs --report   also print depth, complexity and aliases per operation
//
// What is checked:
// - every file parses;
// - all documents together (so a fragment defined in one file can be spread in another) pass
//   graphql-js `validate` with the specified rules: known fields, arguments and types,
//   argument and variable types, unique operation and fragment names across all files, no
//   unused or unknown fragments, no unused or undefined variables, …;
// - every operation is named, in PascalCase, at most 64 characters (the server labels its
//   metrics by operation name and reports longer or missing names as `anonymous`);
// - each operation, with the fragments it spreads, stays within the server's default limits
//   (depth 12, complexity 1000, aliases 30; override with the server's own variables
//   PASSERELLE_MAX_QUERY_DEPTH, PASSERELLE_MAX_QUERY_COMPLEXITY, PASSERELLE_MAX_QUERY_ALIASES).
//   Complexity is estimated as async-graphql computes it: 1 per field plus its children; a
//   connection field costs `first` (its literal, else the variable's default, else 20;
//   clamped to 0..100) times its children. This is checked at the variables' defaults; see
//   `--report` for the cost when the page size is raised to 100.
// Use of deprecated fields or enum values is reported as a warning.

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GraphQLError,
  Kind,
  NoDeprecatedCustomRule,
  Source,
  buildSchema,
  getLocation,
  getNamedType,
  isCompositeType,
  parse,
  specifiedRules,
  validate,
  validateSchema,
  version as graphqlVersion,
} from 'graphql';

const started = process.hrtime.bigint();
const root = dirname(fileURLToPath(import.meta.url));
const report = process.argv.includes('--report');

const limits = {
  depth: intFromEnv('PASSERELLE_MAX_QUERY_DEPTH', 12),
  complexity: intFromEnv('PASSERELLE_MAX_QUERY_COMPLEXITY', 1000),
  aliases: intFromEnv('PASSERELLE_MAX_QUERY_ALIASES', 30),
};
// kernel::page: DEFAULT_PAGE_SIZE and MAX_PAGE_SIZE.
const DEFAULT_FIRST = 20;
const MAX_FIRST = 100;

const problems = []; // { file, line, column, severity, message }
let files = [];
let operations; // set once every file is parsed
let fragments = new Map();

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`${name} must be a non-negative integer, not ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

function add(severity, message, node) {
  const loc = node?.loc;
  if (loc?.source) {
    const { line, column } = getLocation(loc.source, loc.start);
    problems.push({ file: loc.source.name, line, column, severity, message });
  } else {
    problems.push({ file: 'operations', line: 0, column: 0, severity, message });
  }
}

/** A graphql-js error: one entry per node it points at (each node knows its own file). */
function addGraphQLError(severity, error) {
  const message = error.message;
  if (error.nodes?.length) {
    for (const node of error.nodes) add(severity, message, node);
  } else if (error.source && error.positions?.length) {
    for (const position of error.positions) {
      const { line, column } = getLocation(error.source, position);
      problems.push({ file: error.source.name, line, column, severity, message });
    }
  } else {
    add(severity, message, undefined);
  }
}

// --- The schema ---------------------------------------------------------------------------------
let schema;
try {
  const sdl = new Source(readFileSync(join(root, 'schema.graphql'), 'utf8'), 'schema.graphql');
  schema = buildSchema(sdl);
} catch (error) {
  if (error instanceof GraphQLError) addGraphQLError('error', error);
  else problems.push({ file: 'schema.graphql', line: 0, column: 0, severity: 'error', message: String(error) });
  finish();
}
for (const error of validateSchema(schema)) addGraphQLError('error', error);
if (problems.length) finish();

// --- The documents ------------------------------------------------------------------------------
files = readdirSync(join(root, 'operations'))
  .filter((name) => name.endsWith('.graphql'))
  .sort();
if (files.length === 0) {
  problems.push({ file: 'operations', line: 0, column: 0, severity: 'error', message: 'no .graphql files' });
  finish();
}

const definitions = [];
for (const name of files) {
  const path = `operations/${name}`;
  const source = new Source(readFileSync(join(root, 'operations', name), 'utf8'), path);
  try {
    const document = parse(source);
    if (document.definitions.length === 0) {
      problems.push({ file: path, line: 1, column: 1, severity: 'error', message: 'the file defines nothing' });
    }
    definitions.push(...document.definitions);
  } catch (error) {
    if (error instanceof GraphQLError) addGraphQLError('error', error);
    else throw error;
  }
}
// One document from all files: spreads resolve across files, and names must be unique across
// them. Every node keeps the location (file) it was parsed from.
const document = { kind: Kind.DOCUMENT, definitions };

for (const error of validate(schema, document, specifiedRules)) addGraphQLError('error', error);
for (const error of validate(schema, document, [NoDeprecatedCustomRule])) addGraphQLError('warning', error);

operations = definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
fragments = new Map(
  definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
);

for (const operation of operations) {
  const name = operation.name?.value;
  if (!name) {
    add('error', `every operation needs a name (\`${operation.operation} Name(…) { … }\`)`, operation);
  } else if (!/^[A-Z][A-Za-z0-9]*$/.test(name)) {
    add('error', `operation "${name}": name operations in PascalCase (letters and digits)`, operation.name);
  } else if (name.length > 64) {
    add('error', `operation "${name}": names longer than 64 characters are reported as "anonymous" in the server's metrics`, operation.name);
  }
}

// --- Server limits, per operation ------------------------------------------------------------------
const rootTypes = {
  query: schema.getQueryType(),
  mutation: schema.getMutationType(),
  subscription: schema.getSubscriptionType(),
};

/** `first` as the server reads it: the literal, else the variable (its default, or `pageSize`). */
function firstArgument(field, variables, pageSize) {
  const argument = field.arguments?.find((a) => a.name.value === 'first');
  let value = DEFAULT_FIRST;
  if (argument?.value.kind === Kind.INT) {
    value = Number.parseInt(argument.value.value, 10);
  } else if (argument?.value.kind === Kind.VARIABLE) {
    const definition = variables.get(argument.value.name.value);
    if (pageSize !== undefined) value = pageSize;
    else if (definition?.defaultValue?.kind === Kind.INT) value = Number.parseInt(definition.defaultValue.value, 10);
  }
  return Math.min(Math.max(value, 0), MAX_FIRST);
}

function isConnectionField(fieldDef) {
  return (
    getNamedType(fieldDef.type).name.endsWith('Connection') && fieldDef.args.some((a) => a.name === 'first')
  );
}

/** Depth, complexity and aliases of a selection set, fragments inlined (as the server does). */
function measure(selectionSet, parentType, variables, pageSize, usedFragments, stack = new Set()) {
  let depth = 0;
  let complexity = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      const fieldDef =
        selection.name.value === '__typename' ? undefined : parentType?.getFields?.()[selection.name.value];
      const childType = fieldDef ? getNamedType(fieldDef.type) : undefined;
      const child = selection.selectionSet
        ? measure(selection.selectionSet, isCompositeType(childType) ? childType : undefined, variables, pageSize, usedFragments, stack)
        : { depth: 0, complexity: 0 };
      depth = Math.max(depth, 1 + child.depth);
      complexity +=
        fieldDef && isConnectionField(fieldDef)
          ? firstArgument(selection, variables, pageSize) * child.complexity
          : 1 + child.complexity;
    } else {
      let inner;
      let innerType = parentType;
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        inner = selection.selectionSet;
        if (selection.typeCondition) innerType = schema.getType(selection.typeCondition.name.value);
      } else {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || stack.has(fragment.name.value)) continue; // reported by validation
        usedFragments.add(fragment.name.value);
        inner = fragment.selectionSet;
        innerType = schema.getType(fragment.typeCondition.name.value);
        stack.add(fragment.name.value);
      }
      const child = measure(inner, innerType, variables, pageSize, usedFragments, stack);
      if (selection.kind === Kind.FRAGMENT_SPREAD) stack.delete(selection.name.value);
      depth = Math.max(depth, child.depth);
      complexity += child.complexity;
    }
  }
  return { depth, complexity };
}

/** Aliases in the operation and in each fragment it uses, each fragment counted once. */
function countAliases(selectionSet) {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD && selection.alias) count += 1;
    if (selection.selectionSet) count += countAliases(selection.selectionSet);
  }
  return count;
}

const rows = [];
for (const operation of operations) {
  const label = operation.name?.value ?? '(anonymous)';
  const variables = new Map(operation.variableDefinitions.map((v) => [v.variable.name.value, v]));
  const type = rootTypes[operation.operation];
  const used = new Set();
  const atDefaults = measure(operation.selectionSet, type, variables, undefined, used);
  const atMaximum = measure(operation.selectionSet, type, variables, MAX_FIRST, new Set());
  let aliases = countAliases(operation.selectionSet);
  for (const name of used) aliases += countAliases(fragments.get(name).selectionSet);
  rows.push({ label, kind: operation.operation, depth: atDefaults.depth, complexity: atDefaults.complexity, worst: atMaximum.complexity, aliases });
  if (atDefaults.depth > limits.depth) {
    add('error', `operation "${label}" is nested ${atDefaults.depth} fields deep; the server refuses more than ${limits.depth}`, operation);
  }
  if (atDefaults.complexity > limits.complexity) {
    add('error', `operation "${label}" costs about ${atDefaults.complexity} at its default page sizes; the server refuses more than ${limits.complexity} (lower \`first\` or select fewer fields)`, operation);
  }
  if (aliases > limits.aliases) {
    add('error', `operation "${label}" uses ${aliases} aliases; the server refuses more than ${limits.aliases}`, operation);
  }
}

if (report) {
  const width = Math.max(9, ...rows.map((r) => r.label.length));
  console.log(`${'operation'.padEnd(width)}  kind      depth  complexity  at first=100  aliases`);
  for (const r of rows) {
    const worst = r.worst > limits.complexity ? `${r.worst} (!)` : String(r.worst);
    console.log(
      `${r.label.padEnd(width)}  ${r.kind.padEnd(8)}  ${String(r.depth).padStart(5)}  ${String(r.complexity).padStart(10)}  ${worst.padStart(12)}  ${String(r.aliases).padStart(7)}`,
    );
  }
  console.log(`limits: depth ${limits.depth}, complexity ${limits.complexity}, aliases ${limits.aliases}; (!) = over the limit if every page size is raised to ${MAX_FIRST}\n`);
}

finish();

function finish() {
  const seen = new Set();
  const unique = problems.filter((p) => {
    const key = `${p.file}:${p.line}:${p.column}:${p.severity}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  unique.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  for (const p of unique) console.error(`${p.file}:${p.line}:${p.column}: ${p.severity}: ${p.message}`);
  const errors = unique.filter((p) => p.severity === 'error').length;
  const warnings = unique.length - errors;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const counted =
    operations === undefined
      ? ''
      : `${operations.length} operations and ${fragments.size} fragments in ${files.length} files, `;
  const summary = `${counted}graphql ${graphqlVersion}, ${ms.toFixed(0)} ms`;
  if (errors > 0) {
    console.error(`\n${errors} error(s), ${warnings} warning(s) (${summary})`);
    process.exit(1);
  }
  console.log(`GraphQL operations valid against schema.graphql: ${summary}${warnings ? `, ${warnings} warning(s)` : ''}`);
  process.exit(0);
}
