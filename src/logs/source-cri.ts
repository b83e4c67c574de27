import { CriJoiner, criTime, discoverCriLogs } from './cri.js';
import type { FileTail, TailPosition } from './file-tail.js';
import { isCandidateLine } from './scan.js';
import { makeTail, type LogSource, type SourceDeps, type SourcePositions } from './source.js';

interface CriTrack {
  tail: FileTail;
  joiner: CriJoiner;
  idle: number;
}

/**
 * CRI container logs (Atmosphere): every log of the nova-compute container, oldest restart
 * first; a log whose link is gone is drained, then dropped.
 */
export class CriSource implements LogSource {
  private readonly cri = new Map<string, CriTrack>();

  /**
   * @param saved positions by log target
   * @param firstStart no saved state for this source: only now may history be skipped
   * @param invalid targets whose saved position was unusable: they start at `startAt`, not from 0
   */
  constructor(
    private readonly deps: SourceDeps,
    private readonly saved: Record<string, TailPosition>,
    private firstStart: boolean,
    private readonly invalid: ReadonlySet<string>,
  ) {}

  async poll(): Promise<number> {
    const { deps } = this;
    const found = await discoverCriLogs(deps.config.glob, deps.config.container, deps.hostPath);
    const seen = new Set(found.map((f) => f.target));
    for (const f of found) {
      if (this.cri.has(f.target)) continue;
      const joiner = new CriJoiner(deps.config.maxLineBytes);
      const saved = this.saved[f.target] ?? null;
      // Only the very first start may skip history; a container log that appears later (a
      // restart) is new, and every line of it counts.
      const startAt = saved === null && (this.firstStart || this.invalid.has(f.target)) ? deps.config.startAt : 'beginning';
      const tail = makeTail(deps, deps.hostPath(f.target), saved, startAt, (lines, end) =>
        joiner.consume(
          lines,
          end,
          (rec) => {
            if (isCandidateLine(rec.message, 0, rec.message.length)) deps.line(rec.message.toString('utf8'), { ts: criTime(rec) });
          },
          isCandidateLine,
        ),
      );
      this.cri.set(f.target, { tail, joiner, idle: 0 });
      deps.log.info({ file: f.target, link: f.link, startAt: saved ? 'saved position' : startAt }, 'following nova-compute container log');
    }
    this.firstStart = false;
    let bytes = 0;
    // Oldest restart first, so lines keep their order across a container restart.
    const ordered = [...this.cri.entries()].sort(([a], [b]) => {
      const ra = found.find((f) => f.target === a);
      const rb = found.find((f) => f.target === b);
      return (ra?.restart ?? -1) - (rb?.restart ?? -1);
    });
    for (const [target, track] of ordered) {
      const n = await track.tail.poll();
      bytes += n;
      if (seen.has(target)) {
        track.idle = 0;
        continue;
      }
      // The link is gone (container removed): the file is drained once it stops giving bytes.
      track.idle = n === 0 ? track.idle + 1 : 0;
      if (track.idle >= 2) {
        track.joiner.flush((rec) => deps.line(rec.message.toString('utf8'), { ts: criTime(rec) }));
        await track.tail.close();
        this.cri.delete(target);
        deps.changed();
      }
    }
    deps.stats.following = [...this.cri.values()].some((t) => t.tail.following);
    deps.stats.files = [...this.cri.keys()];
    return bytes;
  }

  interrupt(): void {
    for (const t of this.cri.values()) t.tail.interrupt();
  }

  async stop(): Promise<void> {
    for (const t of this.cri.values()) await t.tail.close();
  }

  positions(): Partial<SourcePositions> {
    const cri: Record<string, TailPosition> = {};
    for (const [target, t] of this.cri) cri[target] = t.tail.position();
    return { cri };
  }
}
