import type { TailPosition } from './file-tail.js';
import { scanCandidateLines } from './scan.js';
import { makeTail, type LogSource, type SourceDeps, type SourcePositions } from './source.js';

/** A plain log file (distro packages, OpenStack-Ansible), followed across rotations. */
export function fileSource(deps: SourceDeps, path: string, saved: TailPosition | null): LogSource {
  const tail = makeTail(deps, deps.hostPath(path), saved, deps.config.startAt, (lines) => {
    const now = Date.now();
    scanCandidateLines(lines, 0, lines.length, (start, end) => deps.line(lines.toString('utf8', start, end), { ts: now }));
    return undefined;
  });
  return {
    async poll() {
      const bytes = await tail.poll();
      deps.stats.following = tail.following;
      deps.stats.files = tail.following ? [tail.file] : [];
      return bytes;
    },
    interrupt: () => tail.interrupt(),
    stop: () => tail.close(),
    positions: (): Partial<SourcePositions> => ({ file: tail.position() }),
  };
}
