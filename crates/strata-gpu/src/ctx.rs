//! One run's recording state: buffers allocated and freed within the run,
//! the dispatches recorded in order, and the single submit.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use strata_ir::DType;

use crate::device::{BufKind, GpuDevice, GpuTensor, PooledBuffer, size_class};
use crate::error::{GpuError, Result};
use crate::kernels::{PARAM_WORDS, WG};
use crate::ops::Kernel;

/// One recorded dispatch.
pub(crate) struct Cmd {
    pipe: Arc<wgpu::ComputePipeline>,
    params: Vec<u32>,
    bufs: Vec<(Arc<PooledBuffer>, u64)>,
    groups: [u32; 3],
}

/// State of one run: recorded dispatches and buffers freed during it.
///
/// Liveness is tracked by counting, per buffer allocated in this run, the
/// values of the run that refer to it (a reshape shares its input's
/// buffer). Recorded commands also hold the buffers, so a dead buffer is
/// not dropped: it goes to `free` and is handed to a later allocation of the
/// same size class. The GPU executes dispatches in order, so the new
/// writer runs after the last reader. Buffers return to the shared pool
/// only after the submit.
pub(crate) struct Ctx<'a> {
    pub(crate) dev: &'a GpuDevice,
    free: Vec<Arc<PooledBuffer>>,
    cmds: Vec<Cmd>,
    /// Live value references per buffer allocated in this run.
    refs: HashMap<*const PooledBuffer, usize>,
    /// Error flags of `integer.wgsl` kernels ([bits, lowest failing node]),
    /// created by the first such dispatch.
    pub(crate) status: Option<GpuTensor>,
    /// Some dispatch may set a status flag: read it back after the submit.
    pub(crate) read_status: bool,
}

impl<'a> Ctx<'a> {
    /// A run on `dev` with nothing recorded yet.
    pub(crate) fn new(dev: &'a GpuDevice) -> Ctx<'a> {
        Ctx { dev, free: Vec::new(), cmds: Vec::new(), refs: HashMap::new(), status: None, read_status: false }
    }

    pub(crate) fn alloc(&mut self, dtype: DType, shape: Vec<usize>) -> Result<GpuTensor> {
        let n = strata_ir::tensor::checked_numel(&shape)
            .ok_or_else(|| GpuError::Limit(format!("shape {shape:?} overflows")))?;
        let bytes = (n.max(1) as u64).checked_mul(4).ok_or_else(|| GpuError::Limit("tensor too large".into()))?;
        let class = size_class(bytes);
        let buf = match self.free.iter().position(|b| b.class() == class && b.kind() == BufKind::Storage) {
            Some(i) => self.free.swap_remove(i),
            None => Arc::new(self.dev.acquire(BufKind::Storage, bytes)?),
        };
        self.refs.insert(Arc::as_ptr(&buf), 0);
        Ok(GpuTensor { buf, dtype, shape, device_id: self.dev.id, host: None, inexact: None })
    }

    /// The run's status buffer (two words, initialised to [0, u32::MAX]).
    pub(crate) fn status(&mut self) -> Result<GpuTensor> {
        if let Some(s) = &self.status {
            return Ok(s.clone());
        }
        let buf = self.dev.acquire(BufKind::Storage, 8)?;
        self.dev.queue.write_buffer(buf.buffer(), 0, bytemuck::cast_slice(&[0u32, u32::MAX]));
        let t = GpuTensor {
            buf: Arc::new(buf),
            dtype: DType::U32,
            shape: vec![2],
            device_id: self.dev.id,
            host: None,
            inexact: None,
        };
        self.status = Some(t.clone());
        Ok(t)
    }

    /// A value of the run now refers to `t`'s buffer.
    pub(crate) fn retain(&mut self, t: &GpuTensor) {
        if let Some(c) = self.refs.get_mut(&Arc::as_ptr(&t.buf)) {
            *c += 1;
        }
    }

    /// A value referring to `t`'s buffer is dead (or `t` was a temporary
    /// never bound to a value); the buffer is free once nothing refers to it.
    /// Buffers not allocated in this run (inputs, constants) are never freed.
    pub(crate) fn release(&mut self, t: GpuTensor) {
        let key = Arc::as_ptr(&t.buf);
        if let Some(c) = self.refs.get_mut(&key) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.refs.remove(&key);
                self.free.push(t.buf);
            }
        }
    }

    /// Workgroup counts for `n` invocations of a 64-wide kernel, folded
    /// into 2-D when 1-D would exceed the per-dimension limit.
    pub(crate) fn groups(&self, n: usize) -> Result<[u32; 3]> {
        let max = self.dev.limits.max_compute_workgroups_per_dimension.max(1) as usize;
        let wg = n.div_ceil(WG as usize);
        if wg <= max {
            return Ok([wg as u32, 1, 1]);
        }
        let y = wg.div_ceil(max);
        if y > max {
            return Err(GpuError::Limit(format!(
                "{n} elements exceed the dispatch limit ({max}^2 workgroups of {WG})"
            )));
        }
        Ok([max as u32, y as u32, 1])
    }

    /// Record a dispatch of `k` with `groups` workgroups: `out` is bound
    /// first, then `ins`.
    pub(crate) fn dispatch(
        &mut self,
        k: &Kernel,
        params: &[u32],
        out: &GpuTensor,
        ins: &[&GpuTensor],
        groups: [u32; 3],
    ) -> Result<()> {
        let pipe = k.pipe()?.clone();
        let mut bufs = vec![(out.buf.clone(), out.byte_len())];
        for t in ins {
            bufs.push((t.buf.clone(), t.byte_len()));
        }
        self.cmds.push(Cmd { pipe, params: params.to_vec(), bufs, groups });
        Ok(())
    }

    /// Record a dispatch of `k` over `n` invocations (nothing when `n` is 0).
    pub(crate) fn dispatch_n(
        &mut self,
        k: &Kernel,
        params: &[u32],
        out: &GpuTensor,
        ins: &[&GpuTensor],
        n: usize,
    ) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let g = self.groups(n)?;
        self.dispatch(k, params, out, ins, g)
    }

    /// Dispatches recorded so far.
    pub(crate) fn recorded(&self) -> usize {
        self.cmds.len()
    }

    pub(crate) async fn submit(mut self) -> Result<()> {
        if self.cmds.is_empty() {
            return Ok(());
        }
        let dev = self.dev;
        let align = u64::from(dev.limits.min_uniform_buffer_offset_alignment).max(4);
        let block = ((PARAM_WORDS * 4) as u64).next_multiple_of(align);
        let total =
            block.checked_mul(self.cmds.len() as u64).ok_or_else(|| GpuError::Limit("too many dispatches".into()))?;
        let mut bytes = vec![0u8; total as usize];
        for (i, c) in self.cmds.iter().enumerate() {
            let off = i * block as usize;
            bytes[off..off + c.params.len() * 4].copy_from_slice(bytemuck::cast_slice(&c.params));
        }
        let pbuf = dev.acquire(BufKind::Uniform, total)?;
        dev.queue.write_buffer(pbuf.buffer(), 0, &bytes);
        let oom = dev.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = dev.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut groups = Vec::with_capacity(self.cmds.len());
        for (i, c) in self.cmds.iter().enumerate() {
            let layout = c.pipe.get_bind_group_layout(0);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: pbuf.buffer(),
                    offset: i as u64 * block,
                    size: NonZeroU64::new((PARAM_WORDS * 4) as u64),
                }),
            }];
            for (j, (b, size)) in c.bufs.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: j as u32 + 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: b.buffer(),
                        offset: 0,
                        size: NonZeroU64::new(*size),
                    }),
                });
            }
            groups.push(dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &entries,
            }));
        }
        let mut enc =
            dev.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("strata-gpu run") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for (c, bg) in self.cmds.iter().zip(&groups) {
                pass.set_pipeline(&c.pipe);
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(c.groups[0], c.groups[1], c.groups[2]);
            }
        }
        dev.queue.submit([enc.finish()]);
        crate::count_submit(self.cmds.len() as u64);
        let v = val.pop().await;
        let o = oom.pop().await;
        self.free.clear();
        if let Some(e) = v {
            return Err(GpuError::Wgpu(e.to_string()));
        }
        if let Some(e) = o {
            return Err(GpuError::Wgpu(format!("out of memory: {e}")));
        }
        dev.check()
    }
}
