// Bundles one function with esbuild (run by build.py as `node --input-type=module --eval <this>`).
// argv: <esbuild package dir> <build dir> <entry file> <out file> <allowed root>...
// Every import must resolve inside an allowed root (the build dir, the toolchain's node_modules),
// so a function cannot pull a file of the gateway's (its secrets, another project's code) into
// its own bundle with `import "/path/to/anything.json"`.
import { realpathSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [esbuildDir, buildDir, entry, outfile, ...roots] = process.argv.slice(1);
const esbuild = createRequire(path.join(esbuildDir, "package.json"))(esbuildDir);
const allowed = roots.map((r) => realpathSync(r) + path.sep);

const fence = {
  name: "run402-fence",
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData && args.pluginData.fenced) return undefined;
      const r = await build.resolve(args.path, {
        kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { fenced: true },
      });
      if (r.errors.length || r.external || !r.path) return r;
      let real;
      try { real = realpathSync(r.path); } catch { real = r.path; }
      if (!allowed.some((root) => real.startsWith(root))) {
        return { errors: [{ text: `import "${args.path}" resolves outside the function's own files and dependencies` }] };
      }
      return r;
    });
  },
};

try {
  const result = await esbuild.build({
    absWorkingDir: buildDir,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "silent",
    nodePaths: roots.slice(1),
    plugins: [fence],
    banner: { js: "import{createRequire as __run402Require}from'node:module';const require=__run402Require('/');" },
  });
  process.stdout.write(JSON.stringify({ ok: true, warnings: result.warnings.map((w) => w.text) }));
} catch (err) {
  const errors = (err && err.errors) || [];
  const lines = errors.length
    ? errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : "") + e.text)
    : [String(err && err.message || err)];
  process.stdout.write(JSON.stringify({ ok: false, errors: lines.slice(0, 20) }));
}
