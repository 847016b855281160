//! `cargo xtask serve [--port N]`: a small static HTTP server (std::net only)
//! for the browser pages in `web/` and the browser tests.
//!
//! It binds 127.0.0.1 (a secure context, so `navigator.gpu` exists) and
//! serves, read-only:
//! - `/…` from `web/` (pages, `src/`, `pkg/`; `/` redirects to the demo),
//! - `/data/…` from the test data directory (`$STRATA_DATA_DIR`, else
//!   `~/.cache/strata`),
//! - `/expectations/…` from `tests/expectations/`,
//! - `/suite/onnx-node.json`: the node suite's case list (name and data sets
//!   with their input/output counts), built from the data directory on each
//!   request; a missing or incomplete data set is a 503 naming the fix;
//!   `/suite/onnx-node/<case>.bundle`: all files of one case in one response.
//!
//! No path leaves its root: `.`/`..`/hidden segments, encoded separators and
//! symbolic links out of the root are refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

/// The directories the server exposes.
#[derive(Debug, Clone)]
pub struct Roots {
    /// Served at `/`.
    pub web: PathBuf,
    /// Served at `/data/`; also where `/suite/…` cases are found.
    pub data: PathBuf,
    /// Served at `/expectations/`.
    pub expectations: PathBuf,
}

/// `cargo xtask serve [--port N]`: serve until killed (port 0 picks a free one).
pub fn main(args: &[String]) -> anyhow::Result<()> {
    let mut port: u16 = 8000;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().context("--port needs a number")?.parse().context("--port needs a number")?,
            other => bail!("unknown argument '{other}' (usage: cargo xtask serve [--port N])"),
        }
    }
    let root = crate::repo_root();
    let roots = Roots {
        web: root.join("web"),
        data: crate::data_root(),
        expectations: root.join("tests").join("expectations"),
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    // The first line is read by the browser tests to find the port.
    println!("serving http://{addr}/ (web/: demo.html, conformance.html; /data/ = {})", roots.data.display());
    std::io::stdout().flush()?;
    accept_loop(listener, canonical_roots(&roots)?);
    Ok(())
}

/// Start serving `roots` on 127.0.0.1:`port` in a background thread (for
/// tests and `cargo xtask bench-web`).
pub fn spawn(roots: Roots, port: u16) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let addr = listener.local_addr()?;
    let roots = canonical_roots(&roots)?;
    std::thread::spawn(move || accept_loop(listener, roots));
    Ok(addr)
}

fn canonical_roots(r: &Roots) -> anyhow::Result<Roots> {
    let canon = |p: &Path| p.canonicalize().with_context(|| format!("{} does not exist", p.display()));
    // The data directory may not exist yet (then /data/ and /suite/ answer 404/503).
    let data = r.data.canonicalize().unwrap_or_else(|_| r.data.clone());
    Ok(Roots { web: canon(&r.web)?, data, expectations: canon(&r.expectations)? })
}

fn accept_loop(listener: TcpListener, roots: Roots) {
    for stream in listener.incoming().flatten() {
        let roots = roots.clone();
        std::thread::spawn(move || {
            // A broken connection only ends that connection.
            let _ = handle_connection(stream, &roots);
        });
    }
}

/// A response: status, content type and body (a file is streamed).
enum Body {
    Bytes(Vec<u8>),
    File(std::fs::File, u64),
}

struct Response {
    status: u16,
    content_type: &'static str,
    /// Extra headers (`Location`, `X-Strata-Parts`).
    headers: Vec<(&'static str, String)>,
    body: Body,
}

impl Response {
    fn text(status: u16, msg: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: Body::Bytes(msg.into().into_bytes()),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

const MAX_HEADER_BYTES: usize = 16 * 1024;

fn handle_connection(stream: TcpStream, roots: &Roots) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    // Without this, Nagle's algorithm and delayed ACKs stall each small response ~40 ms.
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stream);
    loop {
        // Request line and headers.
        let mut head = Vec::new();
        let mut total = 0;
        loop {
            let mut line = Vec::new();
            let n = (&mut reader).take((MAX_HEADER_BYTES + 1 - total) as u64).read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(()); // closed
            }
            total += n;
            if total > MAX_HEADER_BYTES {
                write_response(&mut out, &Response::text(431, "request head too large\n"), false, false)?;
                return Ok(());
            }
            let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            if line.is_empty() {
                if head.is_empty() {
                    continue; // stray CRLF between requests
                }
                break;
            }
            head.push(line);
        }
        let mut parts = head[0].split_whitespace();
        let (method, target, version) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
        let mut keep_alive = version == Some("HTTP/1.1");
        let mut has_body = false;
        for h in &head[1..] {
            let Some((k, v)) = h.split_once(':') else { continue };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            if k == "connection" {
                keep_alive = v != "close" && (keep_alive || v == "keep-alive");
            }
            if (k == "content-length" && v != "0") || k == "transfer-encoding" {
                has_body = true;
            }
        }
        let response = if has_body {
            keep_alive = false; // a body we do not read would be taken for the next request
            Response::text(400, "request bodies are not accepted\n")
        } else if method != "GET" && method != "HEAD" {
            Response::text(405, "only GET and HEAD\n")
        } else {
            route(target, roots)
        };
        write_response(&mut out, &response, method == "HEAD", keep_alive)?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn write_response(out: &mut impl Write, r: &Response, head_only: bool, keep_alive: bool) -> std::io::Result<()> {
    let len = match &r.body {
        Body::Bytes(b) => b.len() as u64,
        Body::File(_, n) => *n,
    };
    let mut h = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {len}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        if keep_alive { "keep-alive" } else { "close" }
    );
    for (k, v) in &r.headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    out.write_all(h.as_bytes())?;
    if !head_only {
        match &r.body {
            Body::Bytes(b) => out.write_all(b)?,
            Body::File(f, n) => {
                let copied = std::io::copy(&mut f.take(*n), out)?;
                if copied != *n {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank while serving"));
                }
            }
        }
    }
    out.flush()
}

/// The MIME type of a file name.
pub fn mime_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "css" => "text/css; charset=utf-8",
        "txt" | "ts" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Decode a URL path into safe segments: no empty-after-decoding separators,
/// no `.`/`..` or hidden names, no `/`, `\` or NUL inside a segment.
fn segments(path: &str) -> Option<Vec<String>> {
    let mut v = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg = String::from_utf8(percent_decode(raw)?).ok()?;
        if seg.is_empty() || seg.starts_with('.') || seg.contains(['/', '\\', '\0']) {
            return None;
        }
        v.push(seg);
    }
    Some(v)
}

fn route(target: &str, roots: &Roots) -> Response {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Response::text(400, "bad request target\n");
    }
    let Some(segs) = segments(path) else {
        return Response::text(404, "not found\n");
    };
    let (root, rest) = match segs.first().map(String::as_str) {
        None => {
            return Response {
                headers: vec![("Location", "/demo.html".into())],
                ..Response::text(302, "see /demo.html\n")
            };
        }
        Some("suite") if segs.len() == 2 && segs[1] == "onnx-node.json" => return suite_index(&roots.data),
        Some("suite") if segs.len() == 3 && segs[1] == "onnx-node" => {
            return match segs[2].strip_suffix(".bundle") {
                Some(case) => case_bundle(&roots.data, case),
                None => Response::text(404, "not found\n"),
            };
        }
        Some("data") => (&roots.data, &segs[1..]),
        Some("expectations") => (&roots.expectations, &segs[1..]),
        _ => (&roots.web, &segs[..]),
    };
    let mut p = root.clone();
    p.extend(rest);
    // Symbolic links must not lead out of the root either.
    match p.canonicalize() {
        Ok(c) if c.starts_with(root) && c.is_file() => match std::fs::File::open(&c).and_then(|f| {
            let n = f.metadata()?.len();
            Ok((f, n))
        }) {
            Ok((f, n)) => {
                Response { status: 200, content_type: mime_type(&c), headers: Vec::new(), body: Body::File(f, n) }
            }
            Err(_) => Response::text(404, "not found\n"),
        },
        _ => Response::text(404, "not found\n"),
    }
}

/// All files of one node case in one response (a quarter of the requests of
/// fetching them one by one): the body is the files concatenated, and the
/// `X-Strata-Parts` header lists them in order as `path=length`, separated
/// by commas: `model.onnx`, then each data set's `input_N.pb` and `output_N.pb`.
fn case_bundle(data: &Path, case: &str) -> Response {
    let not_found = || Response::text(404, "not found\n");
    let suite = data.join("onnx-node");
    let dir = match suite.join(case).canonicalize() {
        Ok(d) if d.starts_with(data) && d.is_dir() => d,
        _ => return not_found(),
    };
    let mut files = vec!["model.onnx".to_string()];
    let Ok(entries) = std::fs::read_dir(&dir) else { return not_found() };
    let mut sets: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("test_data_set_"))
        .collect();
    sets.sort();
    for set in &sets {
        for prefix in ["input", "output"] {
            files.extend((0..count(&dir.join(set), prefix)).map(|i| format!("{set}/{prefix}_{i}.pb")));
        }
    }
    let mut body = Vec::new();
    let mut parts = Vec::new();
    for f in &files {
        match dir
            .join(f)
            .canonicalize()
            .and_then(|p| if p.starts_with(&dir) { std::fs::read(p) } else { Err(std::io::ErrorKind::NotFound.into()) })
        {
            Ok(b) => {
                parts.push(format!("{f}={}", b.len()));
                body.extend(b);
            }
            Err(_) => return not_found(),
        }
    }
    Response {
        status: 200,
        content_type: "application/octet-stream",
        headers: vec![("X-Strata-Parts", parts.join(","))],
        body: Body::Bytes(body),
    }
}

fn count(dir: &Path, prefix: &str) -> usize {
    (0..).take_while(|i| dir.join(format!("{prefix}_{i}.pb")).is_file()).count()
}

/// The node suite's case list as JSON; 503 when the data is missing or incomplete.
fn suite_index(data: &Path) -> Response {
    match suite_json(&data.join("onnx-node")) {
        Ok(s) => Response { status: 200, content_type: "application/json", headers: Vec::new(), body: Body::Bytes(s) },
        Err(e) => Response::text(503, format!("{e:#}\n")),
    }
}

fn suite_json(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let complete = dir.join("COMPLETE");
    let Ok(marker) = std::fs::read_to_string(&complete) else {
        bail!("the ONNX node suite is missing or incomplete at {} — run `cargo xtask fetch-data`", dir.display());
    };
    let mut cases = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if !p.is_dir() {
            continue;
        }
        let mut sets: Vec<PathBuf> = std::fs::read_dir(&p)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.is_dir() && d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
            .collect();
        sets.sort();
        let sets: Vec<serde_json::Value> = sets
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.file_name().unwrap_or_default().to_string_lossy(),
                    "inputs": count(d, "input"),
                    "outputs": count(d, "output"),
                })
            })
            .collect();
        let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
        cases.push(serde_json::json!({ "name": name, "dataSets": sets }));
    }
    cases.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let expected: usize = marker.trim().parse().unwrap_or(0);
    if cases.len() != expected {
        bail!(
            "the ONNX node suite at {} has {} cases, its COMPLETE marker says {expected} — run `cargo xtask fetch-data`",
            dir.display(),
            cases.len()
        );
    }
    Ok(serde_json::to_vec(&serde_json::json!({ "suite": "onnx-node", "cases": cases }))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// A fresh directory tree:
    /// `outside/secret.txt`, `web/{a.js,m.mjs,x.wasm,page.html,.hidden}`,
    /// `web/escape` -> `outside`, `data/onnx-node/test_x/test_data_set_0/{input_0,output_0}.pb`,
    /// `exp/onnx-node/web-cpu.txt`.
    fn tree(name: &str, complete: Option<&str>) -> (PathBuf, Roots) {
        let base = std::env::temp_dir().join(format!("strata-serve-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let w = |p: &str, s: &str| {
            let p = base.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w("outside/secret.txt", "secret");
        w("web/a.js", "export const a = 1;");
        w("web/m.mjs", "export {};");
        w("web/x.wasm", "\0asm");
        w("web/page.html", "<p>hi</p>");
        w("web/.hidden", "hidden");
        w("data/onnx-node/test_x/test_data_set_0/input_0.pb", "i");
        w("data/onnx-node/test_x/test_data_set_0/output_0.pb", "o");
        w("data/onnx-node/test_x/model.onnx", "m");
        if let Some(c) = complete {
            w("data/onnx-node/COMPLETE", c);
        }
        w("exp/onnx-node/web-cpu.txt", "test_x  # why\n");
        #[cfg(unix)]
        std::os::unix::fs::symlink(base.join("outside"), base.join("web").join("escape")).unwrap();
        let roots = Roots { web: base.join("web"), data: base.join("data"), expectations: base.join("exp") };
        (base, roots)
    }

    /// Send raw requests on one connection; returns the raw response bytes.
    fn raw(addr: SocketAddr, requests: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(requests.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        let r = raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        let (head, body) = r.split_once("\r\n\r\n").unwrap_or((&r, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let ctype = head.lines().find_map(|l| l.strip_prefix("Content-Type: ")).map(str::to_string).unwrap_or_default();
        (status, ctype, body.to_string())
    }

    #[test]
    fn serves_files_with_mime_types() {
        let (_base, roots) = tree("mime", Some("1"));
        let addr = spawn(roots, 0).unwrap();
        assert_eq!(get(addr, "/a.js"), (200, "text/javascript; charset=utf-8".into(), "export const a = 1;".into()));
        assert_eq!(get(addr, "/m.mjs").1, "text/javascript; charset=utf-8");
        assert_eq!(get(addr, "/x.wasm").1, "application/wasm");
        assert_eq!(get(addr, "/page.html?x=1").1, "text/html; charset=utf-8");
        assert_eq!(
            get(addr, "/data/onnx-node/test_x/model.onnx"),
            (200, "application/octet-stream".into(), "m".into())
        );
        assert_eq!(get(addr, "/expectations/onnx-node/web-cpu.txt").2, "test_x  # why\n");
        assert_eq!(get(addr, "/").0, 302);
        assert_eq!(get(addr, "/missing.js").0, 404);
    }

    #[test]
    fn refuses_paths_outside_the_roots() {
        let (base, roots) = tree("traversal", Some("1"));
        let addr = spawn(roots, 0).unwrap();
        let secret = base.join("outside").join("secret.txt");
        assert!(secret.exists());
        for p in [
            "/../outside/secret.txt",
            "/data/../../outside/secret.txt",
            "/%2e%2e/outside/secret.txt",
            "/data/%2E%2E/%2e%2e/outside/secret.txt",
            "/data/..%2f..%2foutside%2fsecret.txt",
            "/..%5coutside%5csecret.txt",
            "/escape/secret.txt",
            "/.hidden",
            "/data/onnx-node/test_x/../../../outside/secret.txt",
            "/a.js%00",
            "/%zz",
            "//etc/passwd",
            "/data",
        ] {
            let (status, _, body) = get(addr, p);
            assert_eq!(status, 404, "{p} gave {status}: {body}");
            assert!(!body.contains("secret"), "{p} leaked the file");
        }
        let (status, _, _) = get(addr, "http://evil/a.js");
        assert_eq!(status, 400);
    }

    #[test]
    fn keep_alive_head_and_methods() {
        let (_base, roots) = tree("keepalive", Some("1"));
        let addr = spawn(roots, 0).unwrap();
        let r = raw(
            addr,
            "GET /a.js HTTP/1.1\r\nHost: x\r\n\r\nHEAD /m.mjs HTTP/1.1\r\nHost: x\r\n\r\nGET /page.html HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 3, "{r}");
        assert!(r.contains("export const a = 1;") && r.contains("<p>hi</p>") && !r.contains("export {};"));
        let r = raw(addr, "POST /a.js HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        let r = raw(addr, "PUT /a.js HTTP/1.1\r\nContent-Length: 3\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    }

    #[test]
    fn suite_index_lists_cases_and_fails_loudly_without_data() {
        let (_base, roots) = tree("suite", Some("1\n"));
        let addr = spawn(roots, 0).unwrap();
        let (status, ctype, body) = get(addr, "/suite/onnx-node.json");
        assert_eq!((status, ctype.as_str()), (200, "application/json"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["cases"][0]["name"], "test_x");
        assert_eq!(
            v["cases"][0]["dataSets"][0],
            serde_json::json!({"name": "test_data_set_0", "inputs": 1, "outputs": 1})
        );

        let r = raw(addr, "GET /suite/onnx-node/test_x.bundle HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            r.contains("X-Strata-Parts: model.onnx=1,test_data_set_0/input_0.pb=1,test_data_set_0/output_0.pb=1\r\n"),
            "{r}"
        );
        assert!(r.ends_with("\r\n\r\nmio"), "{r}");
        for p in
            ["/suite/onnx-node/test_y.bundle", "/suite/onnx-node/test_x", "/suite/onnx-node/..%2f..%2foutside.bundle"]
        {
            assert_eq!(get(addr, p).0, 404, "{p}");
        }

        let (_base, roots) = tree("suite-incomplete", Some("2"));
        let (status, _, body) = get(spawn(roots, 0).unwrap(), "/suite/onnx-node.json");
        assert_eq!(status, 503);
        assert!(body.contains("COMPLETE marker says 2") && body.contains("cargo xtask fetch-data"), "{body}");

        let (_base, roots) = tree("suite-missing", None);
        let (status, _, body) = get(spawn(roots, 0).unwrap(), "/suite/onnx-node.json");
        assert_eq!(status, 503);
        assert!(body.contains("cargo xtask fetch-data"), "{body}");
    }
}
