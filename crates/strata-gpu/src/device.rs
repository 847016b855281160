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

/// A tensor in GPU memory. Every element is one 32-bit word: `f32` as
/// itself, `int32` and range-checked `int64` as `i32`, `bool` as `u32` 0/1.
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
        GpuTensor { buf: self.buf.clone(), dtype, shape, device_id: self.device_id, host }
    }

    /// The host copy, when this tensor was uploaded and is small.
    pub fn host_copy(&self) -> Option<&TensorData> {
        self.host.as_ref()
    }
}

/// Element types that live on the GPU (as 32-bit words).
pub fn gpu_dtype(d: DType) -> bool {
    matches!(d, DType::F32 | DType::I32 | DType::I64 | DType::Bool)
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
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
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
        Ok(GpuDevice {
            device,
            queue,
            info,
            limits,
            id: NEXT_DEVICE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            lost,
            uncaptured,
            pool: Arc::new(BufferPool { free: Mutex::new(PoolState { lists: HashMap::new(), cached_bytes: 0 }) }),
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
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

    /// Copy a host tensor into GPU memory. `int64` values must fit in `i32`
    /// (an error names the first value that does not); other element types
    /// than f32, int32, int64 and bool are rejected.
    pub fn upload(&self, t: &TensorData) -> Result<GpuTensor> {
        self.check()?;
        let dtype = t.dtype();
        let n = t.numel();
        let bytes = t.bytes().ok_or_else(|| GpuError::Value("string tensors cannot live on the GPU".into()))?;
        let src = bytes.as_slice();
        let words: Vec<u8> = match dtype {
            DType::F32 | DType::I32 => src.to_vec(),
            DType::I64 => {
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
            DType::Bool => src.iter().flat_map(|&b| u32::from(b != 0).to_le_bytes()).collect(),
            other => return Err(GpuError::Value(format!("{other} tensors are not supported on the GPU"))),
        };
        let buf = self.acquire(BufKind::Storage, (n.max(1) as u64).saturating_mul(4))?;
        if !words.is_empty() {
            self.queue.write_buffer(buf.buffer(), 0, &words);
        }
        let host = (n <= HOST_COPY_MAX).then(|| t.clone());
        Ok(GpuTensor { buf: Arc::new(buf), dtype, shape: t.shape().to_vec(), device_id: self.id, host })
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
        let bytes: Vec<u8> = match t.dtype {
            DType::F32 | DType::I32 => words,
            DType::I64 => words
                .chunks_exact(4)
                .flat_map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("chunk of 4"))).to_le_bytes())
                .collect(),
            DType::Bool => words.chunks_exact(4).map(|c| u8::from(c != [0, 0, 0, 0])).collect(),
            other => return Err(GpuError::Value(format!("{other} tensors are not supported on the GPU"))),
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
    fn size_classes_cover_and_bound_waste() {
        for b in [1u64, 4, 255, 256, 257, 1000, 4096, 5000, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let c = size_class(b);
            assert!(c >= b && c >= 256, "{b} -> {c}");
            assert!(c <= b.max(256) + b.max(256) / 4 + 1, "{b} -> {c}");
            assert_eq!(size_class(c), c);
        }
    }
}
