// Validates Kubernetes objects (YAML files, several documents each) against the Kubernetes and CRD
// schemas of the kubernetes-models packages: types and required fields. Unknown fields are NOT
// reported by these schemas; the C# tests reject them with KubernetesClient's strict load.
// Usage: node validate.mjs <file.yaml>...   Exit code 0 when every object is valid, 1 otherwise.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const crdPackages = {
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
  'gateway.networking.k8s.io': '@kubernetes-models/gateway-api',
};

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const module = group === ''
    ? `kubernetes-models/${version}`
    : `${crdPackages[group] ?? 'kubernetes-models'}/${group}/${version}`;
  const exports = await import(module);
  const model = exports[kind];
  if (!model) throw new Error(`no model for ${apiVersion} ${kind} in ${module}`);
  return model;
}

// Validated strictly against their CRDs by the C# tests (CrdSchemas); no kubernetes-models package.
const crdCheckedElsewhere = new Set(['postgresql.cnpg.io', 'barmancloud.cnpg.io']);

let failures = 0;
let count = 0;
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const object = document.toJS();
    if (object === null) continue;
    if (crdCheckedElsewhere.has(String(object.apiVersion).split('/')[0])) continue;
    count++;
    const name = `${object.kind}/${object.metadata?.name}`;
    try {
      const Model = await modelFor(object.apiVersion, object.kind);
      new Model(object).validate();
    } catch (error) {
      failures++;
      console.log(`${file}: ${name}: ${error.message}`);
    }
  }
}
console.log(`${count} objects, ${failures} invalid`);
process.exit(failures === 0 && count > 0 ? 0 : 1);
