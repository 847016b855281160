//! The guest's whole view of the outside world: the WASI preview 1
//! functions a Rust `wasm32-wasip1` command imports, implemented over
//! in-memory standard streams. There are no files (no preopened
//! directories: opening a path fails), no environment variables, no
//! arguments, no clocks, no network; random bytes are deterministic. Every
//! pointer the guest passes is bounds-checked against its memory; a bad one
//! is `EFAULT`, never a host fault.

use wasmtime::{Caller, Extern, Linker, Memory};

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const NOSPC: i32 = 51;
    pub const NOTSUP: i32 = 58;
    pub const SPIPE: i32 = 70;
    pub const NOTCAPABLE: i32 = 76;
}

const MODULE: &str = "wasi_snapshot_preview1";

/// The standard streams of one run.
pub(crate) struct Io {
    stdin: Vec<u8>,
    stdin_pos: usize,
    pub(crate) stdout: Vec<u8>,
    stdout_cap: usize,
    pub(crate) stderr: Vec<u8>,
    stderr_cap: usize,
    random: u64,
    /// The status passed to `proc_exit`, once called.
    pub(crate) exit: Option<i32>,
}

impl Io {
    /// Streams with `stdin` to read and at most `stdout_cap` / `stderr_cap`
    /// bytes accepted on the outputs.
    pub(crate) fn new(stdin: Vec<u8>, stdout_cap: usize, stderr_cap: usize) -> Io {
        Io {
            stdin,
            stdin_pos: 0,
            stdout: Vec::new(),
            stdout_cap,
            stderr: Vec::new(),
            stderr_cap,
            random: 0x853c_49e6_748f_ea9b,
            exit: None,
        }
    }

    /// splitmix64: the same bytes in every run (hash seeds only).
    fn next_random(&mut self) -> u64 {
        self.random = self.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Access to the [`Io`] of a store's data.
pub(crate) trait HasIo: 'static {
    fn io(&mut self) -> &mut Io;
}

fn range(ptr: i32, len: usize) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    Some(start..start.checked_add(len)?)
}

fn read_u32(mem: &[u8], ptr: i32) -> Option<u32> {
    Some(u32::from_le_bytes(mem.get(range(ptr, 4)?)?.try_into().ok()?))
}

fn write_bytes(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> Option<()> {
    mem.get_mut(range(ptr, bytes.len())?)?.copy_from_slice(bytes);
    Some(())
}

fn memory<T>(caller: &mut Caller<'_, T>) -> Option<Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

/// Run `f` on the guest's memory and the store's [`Io`]; `None` from `f`
/// (a pointer out of bounds) is `EFAULT`.
fn with_memory<T: HasIo>(caller: &mut Caller<'_, T>, f: impl FnOnce(&mut [u8], &mut Io) -> Option<i32>) -> i32 {
    let Some(memory) = memory(caller) else { return errno::FAULT };
    let (mem, data) = memory.data_and_store_mut(caller);
    f(mem, data.io()).unwrap_or(errno::FAULT)
}

/// The (pointer, length) pairs of an iovec array.
fn iovecs(mem: &[u8], iovs: i32, count: i32) -> Option<Vec<(i32, usize)>> {
    let count = usize::try_from(count).ok()?;
    if count > 1024 {
        return None;
    }
    (0..count)
        .map(|i| {
            let at = (iovs as u32).checked_add(u32::try_from(i * 8).ok()?)? as i32;
            Some((read_u32(mem, at)? as i32, read_u32(mem, at.wrapping_add(4))? as usize))
        })
        .collect()
}

/// Add the functions to `linker`.
pub(crate) fn add_to_linker<T: HasIo>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "random_get", |mut c: Caller<'_, T>, buf: i32, len: i32| -> i32 {
        with_memory(&mut c, |mem, io| {
            let out = mem.get_mut(range(buf, len as u32 as usize)?)?;
            for chunk in out.chunks_mut(8) {
                let r = io.next_random().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
            Some(errno::SUCCESS)
        })
    })?;
    // No environment variables.
    linker.func_wrap(MODULE, "environ_get", |_: Caller<'_, T>, _environ: i32, _buf: i32| -> i32 { errno::SUCCESS })?;
    linker.func_wrap(MODULE, "environ_sizes_get", |mut c: Caller<'_, T>, count: i32, size: i32| -> i32 {
        with_memory(&mut c, |mem, _| {
            write_bytes(mem, count, &0u32.to_le_bytes())?;
            write_bytes(mem, size, &0u32.to_le_bytes())?;
            Some(errno::SUCCESS)
        })
    })?;
    linker.func_wrap(MODULE, "fd_close", |_: Caller<'_, T>, fd: i32| -> i32 {
        if (0..=2).contains(&fd) { errno::SUCCESS } else { errno::BADF }
    })?;
    linker.func_wrap(MODULE, "fd_fdstat_get", |mut c: Caller<'_, T>, fd: i32, stat: i32| -> i32 {
        // Rights bits: fd_read = 1 << 1, fd_write = 1 << 6.
        let rights: u64 = match fd {
            0 => 1 << 1,
            1 | 2 => 1 << 6,
            _ => return errno::BADF,
        };
        with_memory(&mut c, |mem, _| {
            let mut s = [0u8; 24];
            s[0] = 2; // filetype: character device
            s[8..16].copy_from_slice(&rights.to_le_bytes());
            write_bytes(mem, stat, &s)?;
            Some(errno::SUCCESS)
        })
    })?;
    linker.func_wrap(MODULE, "fd_filestat_get", |_: Caller<'_, T>, fd: i32, _stat: i32| -> i32 {
        if (0..=2).contains(&fd) { errno::NOTSUP } else { errno::BADF }
    })?;
    // No preopened directories: the guest sees no file system at all.
    linker.func_wrap(MODULE, "fd_prestat_get", |_: Caller<'_, T>, _fd: i32, _buf: i32| -> i32 { errno::BADF })?;
    linker.func_wrap(MODULE, "fd_prestat_dir_name", |_: Caller<'_, T>, _fd: i32, _p: i32, _l: i32| -> i32 {
        errno::BADF
    })?;
    linker.func_wrap(
        MODULE,
        "path_open",
        |_: Caller<'_, T>,
         _fd: i32,
         _df: i32,
         _p: i32,
         _l: i32,
         _of: i32,
         _rb: i64,
         _ri: i64,
         _ff: i32,
         _o: i32|
         -> i32 { errno::NOTCAPABLE },
    )?;
    linker.func_wrap(MODULE, "fd_seek", |_: Caller<'_, T>, fd: i32, _off: i64, _whence: i32, _new: i32| -> i32 {
        if (0..=2).contains(&fd) { errno::SPIPE } else { errno::BADF }
    })?;
    linker.func_wrap(MODULE, "fd_read", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, nread: i32| -> i32 {
        if fd != 0 {
            return errno::BADF;
        }
        with_memory(&mut c, |mem, io| {
            let mut total = 0usize;
            for (ptr, len) in iovecs(mem, iovs, n)? {
                let left = &io.stdin[io.stdin_pos..];
                let take = left.len().min(len);
                write_bytes(mem, ptr, &left[..take])?;
                io.stdin_pos += take;
                total += take;
                if take < len {
                    break;
                }
            }
            write_bytes(mem, nread, &u32::try_from(total).ok()?.to_le_bytes())?;
            Some(errno::SUCCESS)
        })
    })?;
    linker.func_wrap(MODULE, "fd_write", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, nwritten: i32| -> i32 {
        if fd != 1 && fd != 2 {
            return errno::BADF;
        }
        with_memory(&mut c, |mem, io| {
            let mut total = 0usize;
            for (ptr, len) in iovecs(mem, iovs, n)? {
                let bytes = mem.get(range(ptr, len)?)?;
                if fd == 1 {
                    if io.stdout.len() + len > io.stdout_cap {
                        return Some(errno::NOSPC);
                    }
                    io.stdout.extend_from_slice(bytes);
                } else {
                    // Standard error is kept for messages; past its cap it is dropped.
                    let room = io.stderr_cap.saturating_sub(io.stderr.len());
                    io.stderr.extend_from_slice(&bytes[..room.min(len)]);
                }
                total += len;
            }
            write_bytes(mem, nwritten, &u32::try_from(total).ok()?.to_le_bytes())?;
            Some(errno::SUCCESS)
        })
    })?;
    linker.func_wrap(MODULE, "proc_exit", |mut c: Caller<'_, T>, code: i32| -> wasmtime::Result<()> {
        c.data_mut().io().exit = Some(code);
        Err(wasmtime::format_err!("the guest exited with status {code}"))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_are_bounds_checked() {
        let mut mem = vec![0u8; 16];
        assert_eq!(read_u32(&mem, 12), Some(0));
        assert_eq!(read_u32(&mem, 13), None);
        assert_eq!(read_u32(&mem, -1), None);
        assert!(write_bytes(&mut mem, 15, &[1, 2]).is_none());
        assert!(iovecs(&mem, 0, 3).is_none());
        assert_eq!(iovecs(&mem, 0, 2), Some(vec![(0, 0), (0, 0)]));
        assert!(iovecs(&mem, 0, -1).is_none());
    }
}
