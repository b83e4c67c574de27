/**
 * The vTPM fleet dashboard, as code (@grafana/grafana-foundation-sdk builders, whose types are the
 * Grafana dashboard schema). Metric names come from the agent's own constants (METRIC_NAMES) and
 * recorded names from FLEET_RECORDS, which the suite checks against deploy/prometheus/rules/, so
 * the dashboard cannot ask for a series nobody produces. scripts/gen-grafana.ts writes it out.
 */
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { DEFAULT_FENCING_TRAIT } from '../../src/placement/config.js';
import { METRIC_NAMES as M } from '../../src/metric-names.js';

/** Recorded series the dashboard reads (deploy/prometheus/rules/{verdict,fleet}.rules.yml). */
export const FLEET_RECORDS = {
  hostsUsable: 'version_model:vtpm_hosts_usable:count',
  hostsAdvertised: 'version_model:vtpm_hosts_advertised:count',
  hostsFencedPerConfig: 'version_model:vtpm_hosts_fenced:count',
  hostsDrifting: 'region:vtpm_hosts_drifting:count',
  hostsFenced: 'region:vtpm_hosts_fenced:count',
  agentsDown: 'region:vtpm_agents_down:count',
  guestsAtRisk: 'reason:vtpm_guests_at_risk:sum',
  restartOutcomes: 'outcome:vtpm_guest_restarts:sum',
  barbicanGuests: 'result:vtpm_barbican_preflight_guests:sum',
  barbicanFailures: 'source_reason:vtpm_barbican_failures:rate5m',
} as const;

/** The scrape job pattern the shipped alert rules use for the agent. */
export const AGENT_JOB = '.*vtpm-agent.*';
export const DASHBOARD_UID = 'vtpm-agent-fleet';

const DS: dashboard.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
/** Selectors every query carries: the region variable (fleet series) and the host variable too (host series). */
const REGION = 'region=~"$region"';
const HOST = `${REGION},instance=~"$host"`;

function query(refId: string, expr: string, legend: string, opts: { instant?: boolean; table?: boolean } = {}): prometheus.DataqueryBuilder {
  const q = new prometheus.DataqueryBuilder().refId(refId).expr(expr).legendFormat(legend).datasource(DS).editorMode(prometheus.QueryEditorMode.Code);
  if (opts.instant) q.instant();
  if (opts.table) q.format(prometheus.PromQueryFormat.Table);
  return q;
}

/** A table of instant per-host queries merged on their common labels. */
function hostTable(title: string, description: string, targets: prometheus.DataqueryBuilder[], pos: dashboard.GridPos): table.PanelBuilder {
  const panel = new table.PanelBuilder().title(title).description(description).datasource(DS).gridPos(pos).withTransformation({ id: 'merge', options: {} });
  for (const t of targets) panel.withTarget(t);
  return panel;
}

function countStat(title: string, description: string, expr: string, pos: dashboard.GridPos, red: number): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DS)
    .gridPos(pos)
    .withTarget(query('A', expr, title, { instant: true }))
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
    .colorMode(common.BigValueColorMode.Background)
    .thresholds(
      new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([
        { value: null, color: 'green' },
        { value: red, color: 'red' },
      ]),
    );
}

function bars(title: string, description: string, targets: prometheus.DataqueryBuilder[], pos: dashboard.GridPos): bargauge.PanelBuilder {
  const panel = new bargauge.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DS)
    .gridPos(pos)
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Basic)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
  for (const t of targets) panel.withTarget(t);
  return panel;
}

const row = (title: string, y: number) => new dashboard.RowBuilder(title).gridPos({ h: 1, w: 24, x: 0, y });

export function buildFleetDashboard(): dashboard.Dashboard {
  const built = buildPanels();
  // Grafana keys panel state (links, edits, library panels) by id: number them once, in order.
  built.panels?.forEach((p, i) => (p.id = i + 1));
  return built;
}

function buildPanels(): dashboard.Dashboard {
  const fenced = `${M.placementOwnedTraitPresent}{trait="${DEFAULT_FENCING_TRAIT}",${HOST}}`;
  return new dashboard.DashboardBuilder('vTPM fleet')
    .uid(DASHBOARD_UID)
    .description('vtpm-agent across the cloud: vTPM capacity per TPM configuration, drift and fencing, guests at risk before a reboot, restarts after reboots, Barbican access, emulation checks.')
    .tags(['vtpm', 'openstack', 'nova'])
    .editable()
    .refresh('1m')
    .time({ from: 'now-6h', to: 'now' })
    .timezone('browser')
    .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(
      new dashboard.QueryVariableBuilder('region')
        .label('Region')
        .datasource(DS)
        .query(`label_values(up{job=~"${AGENT_JOB}"}, region)`)
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue('.*'),
    )
    .withVariable(
      new dashboard.QueryVariableBuilder('host')
        .label('Host')
        .datasource(DS)
        .query(`label_values(up{job=~"${AGENT_JOB}",${REGION}}, instance)`)
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue('.*'),
    )
    .withRow(row('Fleet capacity per TPM configuration', 0))
    .withPanel(
      bars(
        'Hosts per TPM configuration',
        'Per TPM version and model: hosts whose local checks pass (usable), hosts libvirt and so Nova advertise it on (advertised), and advertising hosts fenced with the degraded trait (fenced). Advertised but not usable means guests scheduled there fail.',
        [
          query('A', `sum by (version, model) (${FLEET_RECORDS.hostsUsable}{${REGION}})`, '{{version}} {{model}} usable', { instant: true }),
          query('B', `sum by (version, model) (${FLEET_RECORDS.hostsAdvertised}{${REGION}})`, '{{version}} {{model}} advertised', { instant: true }),
          query('C', `sum by (version, model) (${FLEET_RECORDS.hostsFencedPerConfig}{${REGION}})`, '{{version}} {{model}} fenced', { instant: true }),
        ],
        { h: 8, w: 12, x: 0, y: 1 },
      ),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Usable hosts over time')
        .description('Hosts whose local checks pass, per TPM version and model.')
        .datasource(DS)
        .gridPos({ h: 8, w: 12, x: 12, y: 1 })
        .withTarget(query('A', `sum by (version, model) (${FLEET_RECORDS.hostsUsable}{${REGION}})`, '{{version}} {{model}}'))
        .min(0),
    )
    .withRow(row('Hosts: drift, fencing, agents down', 9))
    .withPanel(countStat('Hosts drifting from Placement', 'Hosts whose Placement vTPM traits disagree with the local checks.', `sum(${FLEET_RECORDS.hostsDrifting}{${REGION}}) or vector(0)`, { h: 4, w: 4, x: 0, y: 10 }, 1))
    .withPanel(countStat('Fenced hosts', `Hosts carrying ${DEFAULT_FENCING_TRAIT} (enforce mode): vTPM flavors that forbid it are not scheduled there.`, `sum(${FLEET_RECORDS.hostsFenced}{${REGION}}) or vector(0)`, { h: 4, w: 4, x: 4, y: 10 }, 1))
    .withPanel(countStat('Agents down', 'vtpm-agent targets Prometheus cannot scrape.', `sum(${FLEET_RECORDS.agentsDown}{${REGION}}) or vector(0)`, { h: 4, w: 4, x: 8, y: 10 }, 1))
    .withPanel(
      hostTable(
        'Hosts needing attention',
        'Per host: drifting traits, fenced, agent down, and configurations advertised but unusable.',
        [
          query('A', `max by (instance) (${M.placementTraitDrift}{${HOST}}) == 1`, 'drift', { instant: true, table: true }),
          query('B', `max by (instance) (${fenced}) == 1`, 'fenced', { instant: true, table: true }),
          query('C', `max by (instance) (up{job=~"${AGENT_JOB}",${HOST}}) == 0`, 'down', { instant: true, table: true }),
          query('D', `count by (instance) ((${M.capabilityUsable}{${HOST}} == 0) and on (instance, job, version, model) instance:vtpm_capability_advertised:bool)`, 'advertised unusable', { instant: true, table: true }),
        ],
        { h: 8, w: 12, x: 12, y: 10 },
      ),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Probes failing')
        .description('Agent probes whose latest run failed, per probe.')
        .datasource(DS)
        .gridPos({ h: 4, w: 12, x: 0, y: 14 })
        .withTarget(query('A', `count by (probe) (${M.probeSuccess}{${HOST}} == 0)`, '{{probe}}'))
        .min(0),
    )
    .withRow(row('Guests at risk before a reboot', 18))
    .withPanel(
      bars(
        'vTPM guests at risk per reason',
        'Running vTPM guests that would not come back by themselves after a host reboot. `vtpm-agent check --pre-reboot` on the host lists them.',
        [query('A', `sum by (reason) (${FLEET_RECORDS.guestsAtRisk}{${REGION}})`, '{{reason}}', { instant: true })],
        { h: 8, w: 12, x: 0, y: 19 },
      ),
    )
    .withPanel(
      hostTable(
        'Hosts with guests at risk',
        'Do not reboot these hosts before the guests are moved or the reason is fixed.',
        [query('A', `sum by (instance, reason) (${M.guestsAtRisk}{${HOST}}) > 0`, '{{reason}}', { instant: true, table: true })],
        { h: 8, w: 12, x: 12, y: 19 },
      ),
    )
    .withRow(row('Restarts after the last reboot', 27))
    .withPanel(
      hostTable(
        'Restart outcomes per host',
        'vTPM guests followed across each host’s last reboot, by outcome (restarted, failed, gone), and when the host booted.',
        [
          query('A', `sum by (instance, outcome) (${M.guestRestarts}{${HOST}})`, '{{outcome}}', { instant: true, table: true }),
          query('B', `max by (instance) (${M.hostBootTimestamp}{${HOST}}) * 1000`, 'booted', { instant: true, table: true }),
        ],
        { h: 8, w: 12, x: 0, y: 28 },
      ),
    )
    .withPanel(
      hostTable(
        'Guests still down after a reboot',
        'Hosts with vTPM guests that failed to restart and are still down, by reason.',
        [query('A', `count by (instance, reason) (${M.guestRestartFailed}{${HOST}} == 1)`, '{{reason}}', { instant: true, table: true })],
        { h: 4, w: 12, x: 12, y: 28 },
      ),
    )
    .withPanel(
      bars(
        'Restart outcomes in the fleet',
        'All hosts: vTPM guests restarted, failed, or gone after their host’s last reboot.',
        [query('A', `sum by (outcome) (${FLEET_RECORDS.restartOutcomes}{${REGION}})`, '{{outcome}}', { instant: true })],
        { h: 4, w: 12, x: 12, y: 32 },
      ),
    )
    .withRow(row('Barbican access', 36))
    .withPanel(
      bars(
        'vTPM guests by Barbican access result',
        'Latest preflight result for each vTPM guest whose restart needs Barbican: ok, forbidden, not_found, unauthenticated, unavailable.',
        [query('A', `sum by (result) (${FLEET_RECORDS.barbicanGuests}{${REGION}})`, '{{result}}', { instant: true })],
        { h: 8, w: 12, x: 0, y: 37 },
      ),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Barbican failures per second')
        .description('Failures to read vTPM secrets, seen by the preflight (acting as Nova) or in nova-compute’s log, by reason.')
        .datasource(DS)
        .gridPos({ h: 8, w: 12, x: 12, y: 37 })
        .withTarget(query('A', `sum by (source, reason) (${FLEET_RECORDS.barbicanFailures}{${REGION}})`, '{{source}} {{reason}}'))
        .unit('reqps')
        .min(0),
    )
    .withRow(row('Emulation checks', 45))
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Emulation check duration')
        .description('Wall time of the latest local TPM emulation check per host, TPM version and level; a rising trend precedes timeouts.')
        .datasource(DS)
        .gridPos({ h: 8, w: 24, x: 0, y: 46 })
        .withTarget(query('A', `max by (instance, version, level) (${M.emulationCheckDuration}{${HOST}})`, '{{instance}} TPM {{version}} {{level}}'))
        .unit('s')
        .min(0),
    )
    .build();
}

export interface PanelQuery {
  panel: string;
  refId: string;
  expr: string;
}

/** Every query of every panel, for the suite to run against a real Prometheus. */
export function panelQueries(d: dashboard.Dashboard): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const p of d.panels ?? []) {
    if (!('targets' in p) || !p.targets) continue;
    for (const t of p.targets as Array<{ refId?: string; expr?: string }>) {
      if (t.expr) out.push({ panel: p.title ?? '', refId: t.refId ?? '', expr: t.expr });
    }
  }
  return out;
}

/** A query as Grafana sends it with "All" selected for every variable. */
export function withAllSelected(expr: string): string {
  return expr.replaceAll('$region', '.*').replaceAll('$host', '.*');
}
