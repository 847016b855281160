//! `strata-wasi`: reads one request on standard input, writes one response
//! on standard output (see the library's documentation for the protocol).
//! Built for `wasm32-wasip1` it is the guest of `strata-sandbox`; natively
//! it behaves the same.

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut request) {
        eprintln!("strata-wasi: cannot read the request: {e}");
        return ExitCode::from(2);
    }
    let response = strata_wasi::serve(&request);
    drop(request);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(&response).and_then(|()| out.flush()) {
        eprintln!("strata-wasi: cannot write the response: {e}");
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}
