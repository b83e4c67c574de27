import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { KINDS, MANIFEST_DIR, kindKey, label, loadManifests, schemaErrors, unknownFieldErrors, type Manifest } from '../harness/manifests.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are walked as plain JSON */
const manifests = await loadManifests();
const byKind = (kind: string, name?: string): any => {
  const found = manifests.filter((m) => m.doc.kind === kind && (name === undefined || m.doc.metadata?.name === name));
  if (found.length !== 1) throw new Error(`expected exactly one ${kind}${name ? ` named ${name}` : ''}, found ${found.length}`);
  return found[0]!.doc;
};
const daemonSet = byKind('DaemonSet');
const podSpec = daemonSet.spec.template.spec;
const container = podSpec.containers.find((c: any) => c.name === 'agent');
const configMap = byKind('ConfigMap', 'vtpm-agent-config');
const agentConfig = configSchema.parse(parse(configMap.data['config.yaml']));

t.test('the directory holds the expected kinds, each known to the validator', async (t) => {
  t.same(manifests.map((m) => m.doc.kind).sort(), ['ConfigMap', 'ConfigMap', 'DaemonSet', 'PodMonitor', 'PrometheusRule', 'ServiceAccount']);
  for (const { doc } of manifests) t.ok(KINDS[kindKey(doc)], `${label(doc)} has a model`);
  for (const { doc } of manifests) t.equal((doc as any).metadata?.namespace, undefined, `${label(doc)} is namespace-agnostic`);
});

t.test('every manifest passes the Kubernetes / prometheus-operator schema', async (t) => {
  for (const { file, doc } of manifests) t.same(schemaErrors(doc), [], `${file}: ${label(doc)}`);
});

t.test('no manifest has an unknown or misspelled field', async (t) => {
  t.same(await unknownFieldErrors(manifests.map((m) => m.doc)), []);
});

t.test('kustomization.yaml lists exactly the manifests and names the DaemonSet image', async (t) => {
  const k = parse(readFileSync(path.join(MANIFEST_DIR, 'kustomization.yaml'), 'utf8'));
  t.equal(k.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  t.equal(k.kind, 'Kustomization');
  t.equal(k.namespace, undefined, 'namespace-agnostic: the overlay sets it');
  const files = readdirSync(MANIFEST_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
  t.same([...k.resources].sort(), files);
  const imageName = String(container.image).replace(/:[^:/]+$/, '');
  t.ok(k.images.some((i: any) => i.name === imageName), `images[] names ${imageName}`);
});

t.test('the ConfigMap is a valid agent configuration for a pod mounting the host at /host', async (t) => {
  t.equal(agentConfig.hostRoot, '/host');
  t.equal(agentConfig.novaLog.source, 'cri');
  t.equal(agentConfig.emulation.runAs, 'self', 'the pod cannot switch users (no CAP_SETUID)');
  const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
  t.equal(env.VTPM_AGENT__HOST_ROOT, agentConfig.hostRoot);
  t.ok(container.args.includes('/etc/vtpm-agent/config.yaml'));
  const configMount = container.volumeMounts.find((m: any) => m.mountPath === '/etc/vtpm-agent');
  t.equal(podSpec.volumes.find((v: any) => v.name === configMount.name)?.configMap?.name, configMap.metadata.name);
});

t.test('DaemonSet: Atmosphere placement, host PID, probes, resources, least privilege', async (t) => {
  t.same(podSpec.nodeSelector, { 'openstack-compute-node': 'enabled' });
  t.equal(podSpec.hostPID, true);
  t.equal(podSpec.automountServiceAccountToken, false);
  const port = container.ports.find((p: any) => p.name === 'metrics');
  t.equal(port?.containerPort, agentConfig.listen.port);
  t.equal(container.livenessProbe.httpGet.path, '/healthz');
  t.equal(container.livenessProbe.httpGet.port, 'metrics');
  t.equal(container.readinessProbe.httpGet.path, '/readyz');
  for (const k of ['cpu', 'memory']) {
    t.ok(container.resources.requests[k], `requests.${k}`);
    t.ok(container.resources.limits[k], `limits.${k}`);
  }
  const sc = container.securityContext;
  t.equal(sc.privileged, false);
  t.equal(sc.allowPrivilegeEscalation, false);
  t.equal(sc.readOnlyRootFilesystem, true);
  t.same(sc.capabilities, { drop: ['ALL'], add: ['SYS_PTRACE'] }, 'the one capability: SYS_PTRACE for /proc/<libvirtd pid>/root');
  t.equal(podSpec.securityContext.appArmorProfile.type, 'Unconfined', "containerd's default AppArmor profile blocks ptrace-read");
  t.ok(container.envFrom.some((e: any) => e.secretRef?.name), 'OS_* credentials from a Secret');
});

t.test('DaemonSet: host paths read-only under /host (state excepted), each mount backed by a volume', async (t) => {
  const volumes = new Map<string, any>(podSpec.volumes.map((v: any) => [v.name, v]));
  for (const mount of container.volumeMounts) {
    const volume = volumes.get(mount.name);
    t.ok(volume, `${mount.mountPath}: volume ${mount.name} exists`);
    if (!volume?.hostPath) continue;
    if (mount.mountPath === agentConfig.stateDir) {
      t.notOk(mount.readOnly, 'the state directory is the one writable host path');
      continue;
    }
    t.equal(mount.readOnly, true, `${mount.mountPath} is read-only`);
    if (mount.mountPath.startsWith('/host/')) t.equal(mount.mountPath, `/host${volume.hostPath.path}`, `${mount.mountPath} mirrors the host path`);
  }
  const hostPaths = podSpec.volumes.filter((v: any) => v.hostPath).map((v: any) => v.hostPath.path);
  // atmosphere.md: what the libvirt pod shares with the host, plus /proc and the CRI logs.
  for (const p of ['/run/libvirt', '/var/lib/libvirt', '/var/lib/nova', '/etc/libvirt/qemu', '/var/log/libvirt', '/proc', '/var/log/pods', '/var/log/containers']) {
    t.ok(hostPaths.includes(p), `hostPath ${p} is mounted`);
  }
});

t.test('PodMonitor: selected by kube-prometheus-stack, scrapes the metrics port with Atmosphere relabelling', async (t) => {
  const pm = byKind('PodMonitor');
  t.equal(pm.metadata.labels.release, 'kube-prometheus-stack');
  for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) t.equal(daemonSet.spec.template.metadata.labels[k], v, `selects pods by ${k}`);
  const ep = pm.spec.podMetricsEndpoints[0];
  t.equal(ep.port, 'metrics');
  t.equal(ep.interval, '60s');
  t.same(ep.relabelings[0], { sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'instance' });
  const drop = ep.relabelings.find((r: any) => r.action === 'labeldrop');
  for (const l of ['container', 'namespace', 'pod', 'node', 'service']) t.match(l, new RegExp(drop.regex), `drops ${l}`);
  t.notMatch('instance', new RegExp(drop.regex), 'keeps instance');
});

t.test('test of the test: broken manifests are rejected', async (t) => {
  const clone = (doc: Manifest): any => structuredClone(doc);
  const portAsString = clone(daemonSet);
  portAsString.spec.template.spec.containers[0].ports[0].containerPort = '9643';
  t.match(schemaErrors(portAsString).join('\n'), /containerPort must be integer/);

  const noSelector = clone(daemonSet);
  delete noSelector.spec.selector;
  t.match(schemaErrors(noSelector).join('\n'), /must have required property selector/);

  const badFor = clone(byKind('PrometheusRule'));
  badFor.spec.groups[0].rules[0].for = '5 minutes';
  t.match(schemaErrors(badFor).join('\n'), /for must match pattern/);

  const unknownKind = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } };
  t.match(schemaErrors(unknownKind).join('\n'), /has no model/);

  // Misspelled fields pass the JSON schemas (they allow extra properties) …
  const typoPodSpec = clone(daemonSet);
  typoPodSpec.spec.template.spec.hostPid = true;
  t.same(schemaErrors(typoPodSpec), [], 'the schema alone lets a misspelled field through');
  const typoPodMonitor = clone(byKind('PodMonitor'));
  typoPodMonitor.spec.podMetricsEndpoints[0].relabelling = [];
  // … and the type check catches them, naming the manifest and the field.
  const problems = await unknownFieldErrors([typoPodSpec, typoPodMonitor, configMap]);
  t.equal(problems.length, 2, problems.join('\n'));
  t.match(problems[0], /^DaemonSet\/vtpm-agent: TS2353 .*hostPid/);
  t.match(problems[1], /^PodMonitor\/vtpm-agent: TS2353 .*relabelling/);
});

t.test('the Grafana dashboard ConfigMap: the sidecar label and the generated dashboard JSON', async (t) => {
  const cm = byKind('ConfigMap', 'vtpm-agent-grafana-dashboard');
  t.equal(cm.metadata.labels.grafana_dashboard, '1', 'kube-prometheus-stack loads ConfigMaps labelled grafana_dashboard: "1"');
  const json = readFileSync(path.join(MANIFEST_DIR, '../grafana/dashboards/vtpm-fleet.json'), 'utf8');
  t.same(Object.keys(cm.data), ['vtpm-fleet.json']);
  t.equal(cm.data['vtpm-fleet.json'], json, 'the same dashboard as deploy/grafana/dashboards/');
  t.ok(Buffer.byteLength(json) < 262_144, 'fits kubectl apply’s last-applied annotation');
});
