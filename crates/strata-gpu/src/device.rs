//! The GPU device: adapter and device creation, loss detection, the buffer
//! pool, the pipeline cache, and tensor upload and (asynchronous) download.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use strata_ir::{DType, TensorData};

use crate::error::{GpuError, Result};
use crate::kernels::Shader;

/// Usage class of pooled buffers (buffers of different usages never mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BufKind {
    /// Tensor storage: STORAGE | COPY_SRC | COPY_DST.
    Storage,
    /// Kernel parameters: UNIFORM | COPY_DST.
    Uniform,
}

/// Freed buffers by (usage, size class), reused by later allocations.
pub(crate) struct BufferPool {
    free: Mutex<PoolState>,
}

struct PoolState {
    lists: HashMap<(BufKind, u64), Vec<wgpu::Buffer>>,
    cached_bytes: u64,
}

/// Most bytes kept in the free lists; beyond this freed buffers are destroyed.
const MAX_CACHED_BYTES: u64 = 1 << 30;

/// Round a byte size up to its size class: four classes per power of two
/// (at most 25% waste), at least 256 bytes.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    let p = 63 - b.leading_zeros() as u64; // floor(log2 b)
    if p < 2 {
        return b;
    }
    let step = 1u64 << (p - 2);
    b.div_ceil(step).saturating_mul(step)
}

/// A buffer from the pool; dropping it returns it to the pool.
pub struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    kind: BufKind,
    class: u64,
    pool: Weak<BufferPool>,
}

impl std::fmt::Debug for PooledBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PooledBuffer({} bytes)", self.class)
    }
}

impl PooledBuffer {
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
    pub(crate) fn class(&self) -> u64 {
        self.class
    }
    pub(crate) fn kind(&self) -> BufKind {
        self.kind
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let (Some(buf), Some(pool)) = (self.buffer.take(), self.pool.upgrade()) {
            let mut st = pool.free.lock().unwrap_or_else(|e| e.into_inner());
            if st.cached_bytes.saturating_add(self.class) <= MAX_CACHED_BYTES {
                st.cached_bytes += self.class;
                st.lists.entry((self.kind, self.class)).or_default().push(buf);
            }
        }
    }
}

/// A tensor in GPU memory. Every element is one 32-bit word whose meaning
/// follows from the element type's [`Word`] class (see the crate docs).
/// Clones share the buffer (reshapes are aliases, not copies).
#[derive(Clone, Debug)]
pub struct GpuTensor {
    pub(crate) buf: Arc<PooledBuffer>,
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    /// Identity of the device that owns the buffer.
    pub(crate) device_id: u64,
    /// Host copy of small uploaded tensors, so that shape-like operands
    /// (Reshape shapes, Slice bounds, axes) arriving from another partition
    /// can be read without a readback.
    pub(crate) host: Option<TensorData>,
    /// Why the device words do not hold the values exactly (a small int64
    /// tensor with values beyond 32 bits, such as Slice's "to the end"
    /// bounds): such a tensor serves only as a host operand, and a kernel
    /// reading it on the device fails with this reason.
    pub(crate) inexact: Option<String>,
}

/// Uploaded tensors up to this many elements keep a host copy.
pub(crate) const HOST_COPY_MAX: usize = 1024;

impl GpuTensor {
    /// The logical element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Bytes used on the device (4 per element, at least 4).
    pub(crate) fn byte_len(&self) -> u64 {
        (self.numel().max(1) as u64) * 4
    }
    /// The same buffer viewed with another shape and element type.
    pub(crate) fn view(&self, dtype: DType, shape: Vec<usize>) -> GpuTensor {
        let host = match &self.host {
            Some(h) if dtype == self.dtype => h.reshaped(shape.clone()).ok(),
            _ => None,
        };
        GpuTensor {
            buf: self.buf.clone(),
            dtype,
            shape,
            device_id: self.device_id,
            host,
            inexact: self.inexact.clone(),
        }
    }

    /// The host copy, when this tensor was uploaded and is small.
    pub fn host_copy(&self) -> Option<&TensorData> {
        self.host.as_ref()
    }
}

/// How the elements of a type are stored on the device: one 32-bit word
/// each, interpreted as one of four classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// `f32`: float32, and float16, bfloat16, the float8 kinds (float8e8m0's
    /// 2^-127 as an f32 subnormal) and float4e2m1 widened exactly (every
    /// stored value is representable in the type).
    F32,
    /// `i32`: int32, the narrower signed and unsigned types (int2 to int16,
    /// uint2 to uint16; values always in the type's range), and int64
    /// range-checked into i32.
    I32,
    /// `u32`: uint32, and uint64 range-checked into u32.
    U32,
    /// bool as 0/1.
    Bool,
}

/// The storage class of an element type, `None` if it cannot live on the
/// GPU (float64, complex, string).
pub fn word_class(d: DType) -> Option<Word> {
    use DType::*;
    Some(match d {
        F32 | F16 | BF16 | F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 | F4E2M1 => Word::F32,
        I2 | I4 | I8 | I16 | I32 | I64 | U2 | U4 | U8 | U16 => Word::I32,
        U32 | U64 => Word::U32,
        Bool => Word::Bool,
        _ => return None,
    })
}

/// Element types that live on the GPU (as 32-bit words).
pub fn gpu_dtype(d: DType) -> bool {
    word_class(d).is_some()
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct PipelineKey {
    shader: Shader,
    entry: &'static str,
    overrides: Vec<(&'static str, u32)>,
}

static NEXT_DEVICE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A wgpu device and queue with the backend's shared state.
pub struct GpuDevice {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) id: u64,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Option<String>>>,
    pool: Arc<BufferPool>,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    /// Compiler errors of kernel families that do not compile on this
    /// adapter (checked at device creation on the web, see [`precompile`]).
    shader_errors: HashMap<Shader, String>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    /// Pipelines of generated WGSL (fused programs), by source and entry point.
    generated: Mutex<HashMap<(String, &'static str), Arc<wgpu::ComputePipeline>>>,
    /// Buffers created (not reused from the pool), for diagnostics.
    created: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuDevice({} on {:?})", self.info.name, self.info.backend)
    }
}

impl GpuDevice {
    /// Request an adapter and a device. Fails with [`GpuError::NoAdapter`]
    /// when the system has no usable GPU (or software) adapter.
    pub async fn new() -> Result<GpuDevice> {
        #[cfg(target_family = "wasm")]
        browser_webgpu()?;
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("strata-gpu"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let lost = Arc::new(Mutex::new(None));
        let l = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *l.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{reason:?}: {msg}"));
        });
        let uncaptured = Arc::new(Mutex::new(None));
        let u = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut g = u.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_none() {
                *g = Some(e.to_string());
            }
        }));
        #[cfg(target_family = "wasm")]
        let (modules, shader_errors) = precompile(&device).await;
        #[cfg(not(target_family = "wasm"))]
        let (modules, shader_errors) = (HashMap::new(), HashMap::new());
        Ok(GpuDevice {
            device,
            queue,
            info,
            limits,
            id: NEXT_DEVICE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            lost,
            uncaptured,
            pool: Arc::new(BufferPool { free: Mutex::new(PoolState { lists: HashMap::new(), cached_bytes: 0 }) }),
            modules: Mutex::new(modules),
            shader_errors,
            pipelines: Mutex::new(HashMap::new()),
            generated: Mutex::new(HashMap::new()),
            created: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Adapter name and API, for diagnostics.
    pub fn adapter_info(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
    }

    /// `Err(DeviceLost)` once the device is lost; also reports (once) an
    /// error wgpu raised outside an error scope.
    pub fn check(&self) -> Result<()> {
        if let Some(m) = self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(GpuError::DeviceLost(m));
        }
        if let Some(m) = self.uncaptured.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(GpuError::Wgpu(m));
        }
        Ok(())
    }

    /// Destroy the device, as a driver reset would (for tests of recovery).
    #[doc(hidden)]
    pub fn simulate_loss(&self) {
        self.device.destroy();
        let _ = self.device.poll(wgpu::PollType::Poll);
        let mut g = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some("device destroyed".into());
        }
    }

    /// Number of pooled buffers created so far (allocations the pool could
    /// not serve from freed buffers).
    pub fn buffers_created(&self) -> u64 {
        self.created.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True once the device-lost callback has fired.
    pub fn is_lost(&self) -> bool {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Largest tensor (in bytes) one binding may hold.
    pub(crate) fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// A storage or uniform buffer of at least `bytes` bytes, reused from
    /// the pool when one of the same size class is free.
    pub(crate) fn acquire(&self, kind: BufKind, bytes: u64) -> Result<PooledBuffer> {
        let bytes = bytes.max(4).next_multiple_of(4);
        if kind == BufKind::Storage && bytes > self.max_binding() {
            return Err(GpuError::Limit(format!(
                "tensor of {bytes} bytes exceeds the adapter's storage binding limit of {} bytes",
                self.max_binding()
            )));
        }
        let mut class = size_class(bytes);
        if class > self.limits.max_buffer_size {
            class = bytes;
        }
        {
            let mut st = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(buf) = st.lists.get_mut(&(kind, class)).and_then(|l| l.pop()) {
                st.cached_bytes -= class;
                return Ok(PooledBuffer { buffer: Some(buf), kind, class, pool: Arc::downgrade(&self.pool) });
            }
        }
        let usage = match kind {
            BufKind::Storage => {
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
            }
            BufKind::Uniform => wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        };
        self.created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("strata-gpu pooled"),
            size: class,
            usage,
            mapped_at_creation: false,
        });
        Ok(PooledBuffer { buffer: Some(buffer), kind, class, pool: Arc::downgrade(&self.pool) })
    }

    /// The compute pipeline for (shader, entry point, override constants),
    /// created once and cached. Creation errors (invalid WGSL for this
    /// adapter) are returned, not raised asynchronously.
    pub(crate) fn pipeline(
        &self,
        shader: Shader,
        entry: &'static str,
        overrides: &[(&'static str, u32)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = PipelineKey { shader, entry, overrides: overrides.to_vec() };
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        self.check_workgroup(shader, entry)?;
        if let Some(e) = self.shader_errors.get(&shader) {
            return Err(GpuError::Wgpu(format!("kernel file {} does not compile on this adapter: {e}", shader.name())));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = {
            let mut mods = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            mods.entry(shader)
                .or_insert_with(|| {
                    self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(shader.name()),
                        source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                    })
                })
                .clone()
        };
        let constants: Vec<(&str, f64)> = overrides.iter().map(|&(k, v)| (k, f64::from(v))).collect();
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
            cache: None,
        });
        if let Some(e) = block_on_scope(scope.pop()) {
            return Err(GpuError::Wgpu(format!("creating pipeline {}::{entry}: {e}", shader.name())));
        }
        let p = Arc::new(pipeline);
        self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).insert(key, p.clone());
        Ok(p)
    }

    /// The compute pipeline of entry point `entry` in generated WGSL
    /// `source` (a fused program), created once per source and cached.
    pub(crate) fn generated_pipeline(&self, source: &str, entry: &'static str) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = (source.to_string(), entry);
        if let Some(p) = self.generated.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        if let Some([x, y, z]) = workgroup_size(source, entry) {
            let l = &self.limits;
            if x > l.max_compute_workgroup_size_x
                || y > l.max_compute_workgroup_size_y
                || x * y * z > l.max_compute_invocations_per_workgroup
            {
                return Err(GpuError::Limit(format!("generated kernel {entry} needs workgroups of {x}x{y}x{z}")));
            }
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("fused"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = block_on_scope(scope.pop()) {
            return Err(GpuError::Wgpu(format!("creating generated pipeline {entry}: {e}")));
        }
        let p = Arc::new(pipeline);
        self.generated.lock().unwrap_or_else(|e| e.into_inner()).insert(key, p.clone());
        Ok(p)
    }

    /// Copy a host tensor into GPU memory, converting each element to its
    /// storage word ([`word_class`]). `int64` values must fit in `i32` and
    /// `uint64` values in `u32` (an error names the first value that does
    /// not); float64, complex and string tensors are rejected.
    pub fn upload(&self, t: &TensorData) -> Result<GpuTensor> {
        self.check()?;
        let dtype = t.dtype();
        let n = t.numel();
        let bytes = t.bytes().ok_or_else(|| GpuError::Value("string tensors cannot live on the GPU".into()))?;
        let src = bytes.as_slice();
        let class = word_class(dtype)
            .ok_or_else(|| GpuError::Value(format!("{dtype} tensors are not supported on the GPU")))?;
        // A small int64 operand beyond 32 bits is kept exactly on the host
        // (device words saturated); kernels may read it only as a host operand.
        let mut inexact = None;
        if n <= HOST_COPY_MAX && matches!(dtype, DType::I64 | DType::U64) {
            // int64 is stored as i32, uint64 as u32.
            let fits = |v: i128| if dtype == DType::U64 { u32::try_from(v).is_ok() } else { i32::try_from(v).is_ok() };
            if let Some((i, v)) = t.to_i128_vec().into_iter().enumerate().find(|(_, v)| !fits(*v)) {
                inexact =
                    Some(format!("{dtype} element {i} = {v} does not fit in the 32 bits the GPU computes integers in"));
            }
        }
        let words: Vec<u8> = match (dtype, class) {
            _ if inexact.is_some() && dtype == DType::U64 => t
                .to_i128_vec()
                .into_iter()
                .flat_map(|v| (v.clamp(0, i128::from(u32::MAX)) as u32).to_le_bytes())
                .collect(),
            _ if inexact.is_some() => t
                .to_i128_vec()
                .into_iter()
                .flat_map(|v| (v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32).to_le_bytes())
                .collect(),
            (DType::F32 | DType::I32 | DType::U32, _) => src.to_vec(),
            (DType::I64, _) => {
                let mut w =
                    Vec::with_capacity(n.checked_mul(4).ok_or_else(|| GpuError::Value("tensor too large".into()))?);
                for (i, c) in src.chunks_exact(8).enumerate() {
                    let v = i64::from_le_bytes(c.try_into().expect("chunk of 8"));
                    let v32 = i32::try_from(v).map_err(|_| {
                        GpuError::Value(format!(
                            "int64 element {i} = {v} does not fit in i32 (the GPU computes integers in 32 bits)"
                        ))
                    })?;
                    w.extend_from_slice(&v32.to_le_bytes());
                }
                w
            }
            (DType::U64, _) => {
                let mut w =
                    Vec::with_capacity(n.checked_mul(4).ok_or_else(|| GpuError::Value("tensor too large".into()))?);
                for (i, c) in src.chunks_exact(8).enumerate() {
                    let v = u64::from_le_bytes(c.try_into().expect("chunk of 8"));
                    let v32 = u32::try_from(v).map_err(|_| {
                        GpuError::Value(format!(
                            "uint64 element {i} = {v} does not fit in u32 (the GPU computes integers in 32 bits)"
                        ))
                    })?;
                    w.extend_from_slice(&v32.to_le_bytes());
                }
                w
            }
            (DType::Bool, _) => src.iter().flat_map(|&b| u32::from(b != 0).to_le_bytes()).collect(),
            // bfloat16 is the upper half of an f32.
            (DType::BF16, _) => src
                .chunks_exact(2)
                .flat_map(|c| ((u32::from(c[0]) | (u32::from(c[1]) << 8)) << 16).to_le_bytes())
                .collect(),
            // Narrow floats: every value (and NaN, infinity) is exact in f32.
            (_, Word::F32) => t.to_f64_vec().into_iter().flat_map(|v| (v as f32).to_le_bytes()).collect(),
            // Narrow integers: in range of i32 by construction.
            (_, _) => t.to_i128_vec().into_iter().flat_map(|v| (v as i32).to_le_bytes()).collect(),
        };
        let buf = self.acquire(BufKind::Storage, (n.max(1) as u64).saturating_mul(4))?;
        if !words.is_empty() {
            self.queue.write_buffer(buf.buffer(), 0, &words);
        }
        let host = (n <= HOST_COPY_MAX).then(|| t.clone());
        Ok(GpuTensor { buf: Arc::new(buf), dtype, shape: t.shape().to_vec(), device_id: self.id, host, inexact })
    }

    /// Copy a tensor back to the host. Asynchronous: the map request is
    /// completed by the browser's event loop on the web; natively this
    /// future polls the device itself (so `pollster::block_on` drives it).
    pub async fn download(&self, t: &GpuTensor) -> Result<TensorData> {
        self.check()?;
        if t.device_id != self.id {
            return Err(GpuError::DeviceLost("tensor belongs to another (lost) device; upload it again".into()));
        }
        let n = t.numel();
        let words = if n == 0 {
            Vec::new()
        } else {
            let size = (n as u64) * 4;
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("strata-gpu readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            enc.copy_buffer_to_buffer(t.buf.buffer(), 0, &staging, 0, size);
            self.queue.submit([enc.finish()]);
            let slot = Arc::new(Mutex::new(MapSlot { result: None, waker: None }));
            let s2 = slot.clone();
            staging.map_async(wgpu::MapMode::Read, .., move |r| {
                let mut g = s2.lock().unwrap_or_else(|e| e.into_inner());
                g.result = Some(r.map_err(|e| e.to_string()));
                if let Some(w) = g.waker.take() {
                    w.wake();
                }
            });
            #[cfg(not(target_family = "wasm"))]
            self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
            MapFuture { slot }.await.map_err(GpuError::Readback)?;
            let view = staging.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?;
            let v = view.to_vec();
            drop(view);
            staging.unmap();
            v
        };
        self.check()?;
        let bytes: Vec<u8> = match (t.dtype, word_class(t.dtype)) {
            (DType::F32 | DType::I32 | DType::U32, _) => words,
            (DType::I64, _) => words
                .chunks_exact(4)
                .flat_map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("chunk of 4"))).to_le_bytes())
                .collect(),
            (DType::U64, _) => words
                .chunks_exact(4)
                .flat_map(|c| u64::from(u32::from_le_bytes(c.try_into().expect("chunk of 4"))).to_le_bytes())
                .collect(),
            (DType::Bool, _) => words.chunks_exact(4).map(|c| u8::from(c != [0, 0, 0, 0])).collect(),
            // Stored values are exactly representable (kernels narrow their
            // results), so these conversions are exact.
            (d, Some(Word::F32)) => {
                let v: Vec<f64> =
                    words.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4")))).collect();
                return TensorData::from_f64(d, t.shape.clone(), &v).map_err(|e| GpuError::Readback(e.to_string()));
            }
            (d, Some(Word::I32)) => {
                let v: Vec<i128> =
                    words.chunks_exact(4).map(|c| i128::from(i32::from_le_bytes(c.try_into().expect("4")))).collect();
                return TensorData::from_i128(d, t.shape.clone(), &v).map_err(|e| GpuError::Readback(e.to_string()));
            }
            (other, _) => return Err(GpuError::Value(format!("{other} tensors are not supported on the GPU"))),
        };
        TensorData::from_bytes(t.dtype, t.shape.clone(), strata_ir::Buffer::from_vec(bytes))
            .map_err(|e| GpuError::Readback(e.to_string()))
    }
}

struct MapSlot {
    result: Option<std::result::Result<(), String>>,
    waker: Option<Waker>,
}

/// Resolves when the map callback has run.
struct MapFuture {
    slot: Arc<Mutex<MapSlot>>,
}

impl Future for MapFuture {
    type Output = std::result::Result<(), String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut g = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match g.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                g.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// `Err(NoAdapter)` unless this JavaScript realm offers WebGPU: a window or
/// dedicated worker (wgpu panics elsewhere, e.g. in Node.js) whose
/// `navigator.gpu` exists (browsers expose it only in secure contexts:
/// https, or http on localhost / 127.0.0.1).
#[cfg(target_family = "wasm")]
fn browser_webgpu() -> Result<()> {
    use js_sys::{Reflect, wasm_bindgen::JsValue};
    let global = js_sys::global();
    let has = |obj: &JsValue, key: &str| {
        Reflect::get(obj, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined() && !v.is_null())
    };
    if has(&global, "Window").is_none() && has(&global, "WorkerGlobalScope").is_none() {
        return Err(GpuError::NoAdapter(
            "WebGPU needs a browser window or worker; this JavaScript host has none".into(),
        ));
    }
    let gpu = has(&global, "navigator").and_then(|n| has(&n, "gpu"));
    if gpu.is_none() {
        return Err(GpuError::NoAdapter(
            "navigator.gpu is missing (WebGPU needs a secure context: https, or http on localhost; or this \
             browser has WebGPU disabled)"
                .into(),
        ));
    }
    Ok(())
}

/// Browsers compile WGSL asynchronously and report errors later (a broken
/// module only shows up as an invalid pipeline at the next submit). On the
/// web every kernel file is therefore compiled once when the device is
/// created and the compiler's error messages are kept, so that a partition
/// using a kernel the adapter rejects fails to compile with those messages.
#[cfg(target_family = "wasm")]
async fn precompile(device: &wgpu::Device) -> (HashMap<Shader, wgpu::ShaderModule>, HashMap<Shader, String>) {
    let mut modules = HashMap::new();
    let mut errors = HashMap::new();
    // Errors are collected here, not raised as uncaptured errors of the device.
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    for shader in Shader::ALL {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.name()),
            source: wgpu::ShaderSource::Wgsl(shader.source().into()),
        });
        let info = module.get_compilation_info().await;
        let messages: Vec<String> = info
            .messages
            .iter()
            .filter(|m| m.message_type == wgpu::CompilationMessageType::Error)
            .map(|m| match &m.location {
                Some(l) => format!("line {}:{}: {}", l.line_number, l.line_position, m.message),
                None => m.message.clone(),
            })
            .collect();
        if !messages.is_empty() {
            errors.insert(shader, messages.join("; "));
        }
        modules.insert(shader, module);
    }
    let _ = scope.pop().await;
    (modules, errors)
}

impl GpuDevice {
    /// `Err(Limit)` naming the kernel when its `@workgroup_size` exceeds the
    /// adapter's limits (software adapters such as SwiftShader allow 256
    /// invocations), instead of a pipeline error that on the web would only
    /// surface asynchronously.
    fn check_workgroup(&self, shader: Shader, entry: &str) -> Result<()> {
        let Some([x, y, z]) = workgroup_size(shader.source(), entry) else {
            return Ok(());
        };
        let l = &self.limits;
        let invocations = u64::from(x) * u64::from(y) * u64::from(z);
        if x > l.max_compute_workgroup_size_x
            || y > l.max_compute_workgroup_size_y
            || z > l.max_compute_workgroup_size_z
            || invocations > u64::from(l.max_compute_invocations_per_workgroup)
        {
            return Err(GpuError::Limit(format!(
                "kernel {}::{entry} needs workgroups of {x}x{y}x{z} invocations; the adapter allows {}x{}x{} and {} \
                 per workgroup",
                shader.name(),
                l.max_compute_workgroup_size_x,
                l.max_compute_workgroup_size_y,
                l.max_compute_workgroup_size_z,
                l.max_compute_invocations_per_workgroup
            )));
        }
        Ok(())
    }
}

/// The literal `@workgroup_size` of entry point `entry` in WGSL `source`
/// (missing dimensions are 1); `None` if the entry point is not found or
/// its size is not made of integer literals.
pub(crate) fn workgroup_size(source: &str, entry: &str) -> Option<[u32; 3]> {
    let decl = format!("fn {entry}(");
    let at = source.match_indices(&decl).map(|(i, _)| i).find(|&i| {
        // A whole word: not the tail of a longer function name.
        i == 0 || !source[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
    })?;
    let head = &source[..at];
    let start = head.rfind("@workgroup_size(")? + "@workgroup_size(".len();
    // The attribute must belong to this function (no other function in between).
    if head[start..].contains("fn ") {
        return None;
    }
    let args = &head[start..start + head[start..].find(')')?];
    let mut size = [1u32; 3];
    for (i, a) in args.split(',').map(str::trim).filter(|a| !a.is_empty()).enumerate() {
        *size.get_mut(i)? = a.trim_end_matches('u').trim_end_matches('i').parse().ok()?;
    }
    Some(size)
}

/// Error scopes resolve immediately on native wgpu; on the web the result
/// arrives later, so compile-time checks are skipped there (errors then
/// surface through the uncaptured-error handler and [`GpuDevice::check`]).
fn block_on_scope<F: Future<Output = Option<wgpu::Error>>>(f: F) -> Option<wgpu::Error> {
    #[cfg(not(target_family = "wasm"))]
    {
        pollster::block_on(f)
    }
    #[cfg(target_family = "wasm")]
    {
        drop(f);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn no_constant_expression_is_infinite_or_nan() {
        // WGSL makes a constant expression that evaluates to infinity or NaN
        // a shader-creation error; naga accepts it, Chromium's Tint rejects
        // the whole file. Kernels write such values as `f32_bits(0x...u)`
        // (a user function, never constant-evaluated).
        for shader in crate::Shader::ALL {
            let src = shader.source();
            for (i, _) in src.match_indices("bitcast<f32>(0x") {
                let hex: String = src[i + 15..].chars().take_while(char::is_ascii_hexdigit).collect();
                let bits = u32::from_str_radix(&hex, 16).expect("hex literal");
                let line = src[..i].lines().count() + 1;
                assert!(
                    f32::from_bits(bits).is_finite(),
                    "{}:{line}: bitcast<f32>(0x{hex}u) is a constant infinity or NaN; write f32_bits(0x{hex}u)",
                    shader.name()
                );
            }
        }
    }

    #[test]
    fn every_entry_point_has_a_literal_workgroup_size_within_webgpu_defaults() {
        // WebGPU's default limits (what every adapter, SwiftShader included,
        // must offer): 256 invocations, 256 x 256 x 64.
        let mut entries = 0;
        for shader in crate::Shader::ALL {
            let src = shader.source();
            for (i, _) in src.match_indices("@compute") {
                let rest = &src[i..];
                let name_at = rest.find("fn ").expect("entry point after @compute") + 3;
                let name = &rest[name_at..name_at + rest[name_at..].find('(').expect("(")];
                let [x, y, z] = super::workgroup_size(src, name)
                    .unwrap_or_else(|| panic!("{}::{name} has no literal workgroup size", shader.name()));
                assert!(x <= 256 && y <= 256 && z <= 64 && x * y * z <= 256, "{}::{name}: {x}x{y}x{z}", shader.name());
                entries += 1;
            }
        }
        assert!(entries >= 10, "found only {entries} entry points");
        assert_eq!(
            super::workgroup_size("@compute @workgroup_size(16, 16)\nfn mm(a: u32) {}", "mm"),
            Some([16, 16, 1])
        );
        assert_eq!(super::workgroup_size("@compute @workgroup_size(64)\nfn xmm() {}", "mm"), None);
    }

    #[test]
    fn size_classes_cover_and_bound_waste() {
        for b in [1u64, 4, 255, 256, 257, 1000, 4096, 5000, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let c = size_class(b);
            assert!(c >= b && c >= 256, "{b} -> {c}");
            assert!(c <= b.max(256) + b.max(256) / 4 + 1, "{b} -> {c}");
            assert_eq!(size_class(c), c);
        }
    }
}
