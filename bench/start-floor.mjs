// The floor under a verb's start (issue 13): node plus loading exactly the modules that verb
// loads (its static graph and the rooms the facade imports for it), and no work at all. The
// lists are what `strace -e openat node bin/berth.js VERB` shows under dist/ (re-check them when
// the module graph changes). bench/startup.sh times these rows next to the verbs themselves.
//   node bench/start-floor.mjs empty|images|ps|inspect|run
const verb = process.argv[2];
const base = ['cli/main.js', 'index.js', 'berth.js'];
const graphs = {
  empty: [],
  images: [...base, 'cli/commands/images.js', 'store/store.js', 'system.js'],
  ps: [...base, 'cli/commands/ps.js', 'run/records.js', 'oci/reference.js'],
  inspect: [...base, 'cli/commands/inspect.js', 'store/store.js', 'system.js'],
  run: [...base, 'cli/commands/run.js', 'run/spec.js', 'run/containers.js', 'snapshot/snapshotter.js', 'archive/native.js', 'store/root.js'],
};
const list = graphs[verb];
if (!list) {
  process.stderr.write(`start-floor: one of ${Object.keys(graphs).join(', ')}\n`);
  process.exit(2);
}
await Promise.all(list.map((m) => import(new URL(`../dist/${m}`, import.meta.url).href)));
