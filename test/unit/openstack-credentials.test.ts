import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openstackConfigSchema, type OpenStackConfigInput } from '../../src/openstack/config.js';
import { cloudsYamlSearchPath, describeCloud, resolveCloud } from '../../src/openstack/credentials.js';
import { AgentError } from '../../src/errors.js';

const cfg = (input: OpenStackConfigInput = {}) => openstackConfigSchema.parse(input);

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-os-cred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const CLOUDS = `
clouds:
  prod:
    auth:
      auth_url: https://keystone.example.org:5000/v3
      username: nova
      password: hunter2
      project_name: service
      user_domain_name: Default
      project_domain_id: default
    region_name: RegionTwo
    interface: public
    cacert: /etc/ssl/ca.pem
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000
      application_credential_id: abc123
      application_credential_secret: s3cr3t
    verify: false
`;

t.test('no credentials anywhere: null (not configured)', async (t) => {
  t.equal(resolveCloud(cfg(), {}), null);
});

t.test('named cloud from an explicit clouds.yaml', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'clouds.yaml');
  writeFileSync(file, CLOUDS, { mode: 0o600 });
  const cloud = resolveCloud(cfg({ cloud: 'prod', cloudsYamlPath: file }), {})!;
  t.equal(cloud.authUrl, 'https://keystone.example.org:5000/v3');
  t.same(cloud.method, { type: 'password', user: { name: 'nova', domain: { name: 'Default' } }, password: 'hunter2' });
  t.same(cloud.scope, { name: 'service', domain: { id: 'default' } });
  t.equal(cloud.interface, 'public');
  t.equal(cloud.region, 'RegionTwo');
  t.equal(cloud.cacert, '/etc/ssl/ca.pem');
  t.equal(cloud.verify, true);
  t.same(cloud.warnings, [], 'mode 0600 gives no warning');
  t.notMatch(JSON.stringify(describeCloud(cloud)), /hunter2/, 'the description never holds the password');
});

t.test('OS_CLOUD + OS_CLIENT_CONFIG_FILE, application credential, verify false; world-readable warns', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'mine.yaml');
  writeFileSync(file, CLOUDS);
  chmodSync(file, 0o644);
  const cloud = resolveCloud(cfg(), { OS_CLOUD: 'appcred', OS_CLIENT_CONFIG_FILE: file })!;
  t.same(cloud.method, { type: 'application_credential', id: 'abc123', secret: 's3cr3t' });
  t.equal(cloud.scope, null);
  t.equal(cloud.verify, false);
  t.equal(cloud.interface, 'internal', 'default interface is internal');
  t.equal(cloud.warnings.length, 1);
  t.match(cloud.warnings[0], /readable by others \(mode 0644\)/);
  t.notMatch(cloud.warnings[0]!, /s3cr3t/);
});

t.test('secure.yaml beside clouds.yaml supplies the password', async (t) => {
  const dir = tmp(t);
  writeFileSync(
    path.join(dir, 'clouds.yaml'),
    'clouds:\n  c:\n    auth: {auth_url: "http://k:5000/v3", username: u, user_domain_id: default, project_id: p1}\n',
  );
  writeFileSync(path.join(dir, 'secure.yaml'), 'clouds:\n  c:\n    auth: {password: pw}\n', { mode: 0o600 });
  const cloud = resolveCloud(cfg({ cloud: 'c', cloudsYamlPath: path.join(dir, 'clouds.yaml') }), {})!;
  t.same(cloud.method, { type: 'password', user: { name: 'u', domain: { id: 'default' } }, password: 'pw' });
  t.same(cloud.scope, { id: 'p1' });
});

t.test('OS_* environment, with agent config overriding one field', async (t) => {
  const env = {
    OS_AUTH_URL: 'http://127.0.0.1:5000/v3',
    OS_USERNAME: 'placement-agent',
    OS_PASSWORD: 'pw',
    OS_PROJECT_NAME: 'service',
    OS_USER_DOMAIN_NAME: 'Default',
    OS_PROJECT_DOMAIN_NAME: 'Default',
    OS_INTERFACE: 'internalURL',
    OS_REGION_NAME: 'RegionOne',
    OS_INSECURE: 'true',
  };
  const cloud = resolveCloud(cfg({ regionName: 'RegionThree' }), env)!;
  t.equal(cloud.source, 'OS_* environment');
  t.equal(cloud.interface, 'internal', '"internalURL" is normalised');
  t.equal(cloud.region, 'RegionThree', 'agent config wins');
  t.equal(cloud.verify, false, 'OS_INSECURE=true turns verification off');
});

t.test('agent config alone', async (t) => {
  const cloud = resolveCloud(
    cfg({ auth: { authUrl: 'http://k/identity', userId: 'u1', password: 'x', projectId: 'p' }, interface: 'admin' }),
    {},
  )!;
  t.same(cloud.method, { type: 'password', user: { id: 'u1' }, password: 'x' });
  t.equal(cloud.interface, 'admin');
});

t.test('incomplete or wrong input: typed errors naming the problem', async (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'clouds.yaml');
  writeFileSync(file, CLOUDS);
  const cases: Array<[OpenStackConfigInput, NodeJS.ProcessEnv, RegExp]> = [
    [{ cloud: 'nope', cloudsYamlPath: file }, {}, /cloud "nope" is not in .*clouds there: prod, appcred/],
    [{ cloud: 'prod', cloudsYamlPath: path.join(dir, 'missing.yaml') }, {}, /no clouds.yaml was found/],
    [{}, { OS_AUTH_URL: 'http://k/v3', OS_USERNAME: 'u', OS_PASSWORD: 'p', OS_PROJECT_ID: 'x' }, /needs a user domain/],
    [{}, { OS_AUTH_URL: 'http://k/v3', OS_USER_ID: 'u', OS_PROJECT_ID: 'x' }, /password is missing/],
    [{}, { OS_AUTH_URL: 'http://k/v3', OS_USER_ID: 'u', OS_PASSWORD: 'p' }, /project_name or project_id is missing/],
    [{}, { OS_AUTH_URL: 'not a url', OS_USER_ID: 'u', OS_PASSWORD: 'p', OS_PROJECT_ID: 'x' }, /is not a URL/],
    [{}, { OS_AUTH_URL: 'http://k/v3', OS_AUTH_TYPE: 'v3token' }, /auth_type "v3token" is not supported/],
    [{}, { OS_AUTH_URL: 'http://k/v3', OS_APPLICATION_CREDENTIAL_ID: 'i' }, /application_credential_secret is missing/],
    [{}, { OS_AUTH_URL: 'http://k/v3', OS_USER_ID: 'u', OS_PASSWORD: 'p', OS_PROJECT_ID: 'x', OS_INTERFACE: 'private' }, /interface "private"/],
  ];
  for (const [input, env, message] of cases) {
    try {
      resolveCloud(cfg(input), env);
      t.fail(`expected an error matching ${message}`);
    } catch (err) {
      t.ok(err instanceof AgentError, 'an AgentError');
      t.equal((err as AgentError).code, 'VTPM_ERR_OPENSTACK_CONFIG');
      t.match((err as Error).message, message);
    }
  }
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'clouds: [1, 2');
  t.throws(() => resolveCloud(cfg({ cloud: 'x', cloudsYamlPath: bad }), {}), /not valid YAML/);
});

t.test('search path follows openstacksdk', async (t) => {
  const paths = cloudsYamlSearchPath({ HOME: '/home/x', OS_CLIENT_CONFIG_FILE: '/cfg/c.yaml' });
  t.equal(paths[0], '/cfg/c.yaml');
  t.ok(paths.includes('/home/x/.config/openstack/clouds.yaml'));
  t.equal(paths.at(-2), '/etc/openstack/clouds.yaml');
});
