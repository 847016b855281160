// Expectation manifests (tests/expectations/<suite>/<label>.txt) in
// JavaScript, with the same format and rules as the native suite
// (crates/strata-conformance/src/expectations.rs and runner.rs, and the
// regeneration in `strata conformance --update-expectations`):
// one `case  # reason` line per case expected to fail; blank lines and lines
// starting with '#' are comments. Shared by conformance.html (in the
// browser) and tests/browser-suite.mjs (in Node).

/** Parse a manifest: Map(case -> reason). */
export function parseManifest(text) {
  const failing = new Map();
  for (let line of text.split('\n')) {
    line = line.trim();
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf('#');
    const [name, reason] = i < 0 ? [line, ''] : [line.slice(0, i).trim(), line.slice(i + 1).trim()];
    failing.set(name, reason);
  }
  return failing;
}

/**
 * Compare results (`[{name, status: 'pass'|'fail'|'error', message}]`) with
 * the expected failures: a failing case not listed is an unexpected failure,
 * a listed case that passes is an unexpected pass.
 */
export function checkResults(results, failing) {
  const c = { passed: 0, total: results.length, unexpectedFailures: [], unexpectedPasses: [] };
  for (const r of results) {
    const listed = failing.has(r.name);
    if (r.status === 'pass') {
      c.passed++;
      if (listed) c.unexpectedPasses.push(r.name);
    } else if (!listed) {
      c.unexpectedFailures.push({ name: r.name, message: r.message });
    }
  }
  c.ok = c.unexpectedFailures.length === 0 && c.unexpectedPasses.length === 0;
  return c;
}

/** Which manifest a backend choice is checked against (in tests/expectations/onnx-node/). */
export function manifestLabel(backend) {
  return `web-${backend}`;
}

/**
 * The regenerated manifest text. Hand-written reasons (those without ': ';
 * engine messages always contain one) of cases that still fail are kept;
 * other failures get the first line of their message. With `partial` (a
 * filtered run) cases that did not run keep their lines.
 */
export function updatedManifest(results, previous, backend, partial = false) {
  const failing = new Map(partial ? previous : []);
  for (const r of results) {
    if (r.status === 'pass') {
      failing.delete(r.name);
      continue;
    }
    const old = previous.get(r.name);
    const reason = old && !old.includes(': ') ? old : (r.message ?? '').split('\n')[0];
    failing.set(r.name, reason);
  }
  const label = manifestLabel(backend);
  const header = [
    `Cases of suite 'onnx-node' expected to fail in the browser (${label}), with the reason.`,
    "Reasons written by hand (without ': ') are kept when the list is regenerated.",
    `Regenerate with (in web/): node tests/browser-suite.mjs --backend ${backend} --update-expectations`,
  ];
  let s = header.map((l) => `# ${l}\n`).join('');
  const names = [...failing.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    const reason = [...failing.get(name).replace(/[\r\n]/g, '')].slice(0, 200).join('');
    s += `${name}  # ${reason}\n`;
  }
  return s;
}
