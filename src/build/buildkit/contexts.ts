/**
 * Base images that exist only in berth's store, handed to BuildKit as OCI-layout named contexts.
 * The Dockerfile is scanned (no full parse: continuation lines, comments, global ARGs) for the
 * images it names in `FROM`, `COPY --from=` and `RUN --mount=...,from=`; each that the store
 * has under that name becomes `context:NAME=oci-layout://berth@sha256:...`, pinned to the digest
 * the store holds, so the build sees exactly that image and needs no registry.
 */
import { formatReference, parseReference } from '../../oci/reference.js';
import type { Digest } from '../../oci/types.js';
import type { ContentStore } from '../../store/store.js';

/** The `--oci-layout` store id berth's content directory is given. */
export const LAYOUT_ID = 'berth';

export interface NamedContext {
  /** The name as the Dockerfile writes it (`base`, `myapp:dev`). */
  name: string;
  /** Full normalised name found in the store. */
  ref: string;
  digest: Digest;
}

/** Join continuation lines and drop comments and blank lines. */
function instructions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    // Comment lines are dropped, inside continuations too (as BuildKit's parser does).
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1) + ' ';
      continue;
    }
    cur += line;
    if (cur.trim()) out.push(cur.trim());
    cur = '';
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function expand(word: string, vars: Record<string, string>): string {
  return word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, def: string | undefined, b: string | undefined) => {
    const v = vars[(a ?? b)!];
    return v !== undefined && v !== '' ? v : (def ?? '');
  });
}

/** Images (not stages, not `scratch`) a Dockerfile names, as written after ARG expansion. */
export function referencedImages(dockerfile: string, buildArgs: Record<string, string> = {}): string[] {
  const globals: Record<string, string> = {};
  const stages = new Set<string>();
  const images = new Set<string>();
  let seenFrom = false;
  const add = (name: string) => {
    if (!name || name.toLowerCase() === 'scratch' || stages.has(name.toLowerCase()) || /^\d+$/.test(name) || name.includes('$')) return;
    images.add(name);
  };
  for (const ins of instructions(dockerfile)) {
    const [kw, ...rest] = ins.split(/\s+/);
    const op = kw!.toUpperCase();
    if (op === 'ARG' && !seenFrom) {
      for (const a of rest) {
        const eq = a.indexOf('=');
        const k = eq === -1 ? a : a.slice(0, eq);
        const def = eq === -1 ? undefined : a.slice(eq + 1).replace(/^["']|["']$/g, '');
        const v = buildArgs[k] ?? def;
        if (v !== undefined) globals[k] = v;
      }
    } else if (op === 'FROM') {
      seenFrom = true;
      const words = rest.filter((w) => !w.startsWith('--'));
      if (words[0]) add(expand(words[0], globals));
      if (words[1]?.toUpperCase() === 'AS' && words[2]) stages.add(words[2].toLowerCase());
    } else if (op === 'COPY' || op === 'ADD') {
      for (const w of rest) {
        const m = /^--from=(.+)$/.exec(w);
        if (m) add(expand(m[1]!, globals));
      }
    } else if (op === 'RUN') {
      for (const w of rest) {
        if (!w.startsWith('--mount=')) continue;
        const m = /(?:^|,)from=([^,]+)/.exec(w.slice(8));
        if (m) add(expand(m[1]!, globals));
      }
    }
  }
  return [...images];
}

/** The named contexts for the images of `dockerfile` that the store holds. */
export async function storeContexts(store: ContentStore, dockerfile: string, buildArgs: Record<string, string>): Promise<NamedContext[]> {
  const wanted = referencedImages(dockerfile, buildArgs);
  if (wanted.length === 0) return [];
  const images = await store.listImages();
  const out: NamedContext[] = [];
  for (const name of wanted) {
    let full: string;
    let digest: string | undefined;
    try {
      const r = parseReference(name);
      digest = r.digest;
      full = formatReference({ domain: r.domain, path: r.path, tag: r.tag ?? 'latest' });
    } catch {
      continue; // BuildKit reports invalid names itself
    }
    const rec = images.find((i) => i.name === full && (digest === undefined || i.desc.digest === digest));
    if (rec) out.push({ name, ref: full, digest: rec.desc.digest });
  }
  return out;
}
