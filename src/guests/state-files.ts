import path from 'node:path';
import type { StateFile, StateStore } from '../util/state-file.js';
import { snapshotSchema, watchSchema, type Snapshot, type Watch } from './restart-model.js';

export const SNAPSHOT_FILE = 'snapshot.json';
export const WATCH_FILE = 'watch.json';

export interface GuestStateFiles {
  /** The running vTPM guests of this boot, for the next boot to compare against. */
  snapshot: StateFile<Snapshot>;
  /** This boot's restart watch (and the restart totals, so they survive a crash). */
  watch: StateFile<Watch>;
}

/** The restart watcher's two files under `<stateDir>/guests/`. */
export function guestStateFiles(store: StateStore, stateDir: string): GuestStateFiles {
  return {
    snapshot: store.file({
      name: 'guests/snapshot',
      path: path.join(stateDir, 'guests', SNAPSHOT_FILE),
      version: 1,
      schema: snapshotSchema,
      consequence: 'the next boot will not know which vTPM guests ran, so following them across a reboot is off until it can be written',
    }),
    watch: store.file({
      name: 'guests/watch',
      path: path.join(stateDir, 'guests', WATCH_FILE),
      version: 1,
      schema: watchSchema,
      consequence: 'restart decisions of this boot are not kept across an agent restart, and the previous snapshot is not replaced meanwhile',
    }),
  };
}
