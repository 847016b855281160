//! The one table the Rust side and the WGSL kernels agree on: parameter
//! blocks by name ([`wgsl_params!`]), op codes by name ([`wgsl_codes!`]),
//! and the generator that writes them as WGSL into `shaders/generated/`.
//!
//! A kernel module's source is `shaders/prelude.wgsl` (the parameter
//! binding and the helpers every family shares), then its generated file
//! (its parameter structs with their loaders and its op-code constants),
//! then its hand-written body. A planner fills a parameter struct by field
//! name and [`Params::words`] lays it out; the kernel reads the same names:
//!
//! ```text
//! Rust:  Pool2dParams { n, h, w, .. }.words()?      WGSL:  let p = pool2d_params();
//!                                                          if i >= p.n { return; }
//! ```
//!
//! Array fields (`shape: [u32; 8]`) are read with `pool_nd_params_shape(k)`.
//! The generated files are committed; `generated_wgsl_is_up_to_date`
//! fails when they are stale (`cargo xtask codegen` rewrites them).

use std::fmt::Write;

use crate::GpuError;
use crate::kernels::PARAM_WORDS;

/// The WGSL type of a parameter word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `u32`, filled from a `usize` (checked to fit).
    U32,
    /// `i32`, filled from an `i64` (checked to fit).
    I32,
    /// `f32`, its bits.
    F32,
}

impl Ty {
    fn wgsl(self) -> &'static str {
        match self {
            Ty::U32 => "u32",
            Ty::I32 => "i32",
            Ty::F32 => "f32",
        }
    }

    /// The WGSL expression reading word `at`.
    fn read(self, at: &str) -> String {
        match self {
            Ty::U32 => format!("P({at})"),
            Ty::I32 => format!("bitcast<i32>(P({at}))"),
            Ty::F32 => format!("bitcast<f32>(P({at}))"),
        }
    }
}

/// One named field of a parameter block: `len` words of type `ty` (an
/// array when `array`).
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Name, the same in Rust and WGSL.
    pub name: &'static str,
    /// Word type.
    pub ty: Ty,
    /// Words (1 for a scalar).
    pub len: usize,
    /// Whether the field is an array (read by index).
    pub array: bool,
}

/// A parameter block: its fields in word order from word 0.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The Rust struct's name (`Pool2dParams`); WGSL names the struct the
    /// same and its loader in snake case (`pool2d_params()`).
    pub name: &'static str,
    /// Fields in order.
    pub fields: &'static [Field],
}

impl Layout {
    /// Words the block takes.
    pub const fn words(&self) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.fields.len() {
            n += self.fields[i].len;
            i += 1;
        }
        n
    }

    fn snake(&self) -> String {
        snake(self.name)
    }
}

/// The Rust type a parameter of WGSL type `Self` is filled from, and how
/// it becomes words.
pub trait ParamTy {
    /// What a planner writes.
    type Rust;
    /// Word type.
    const TY: Ty;
    /// Words.
    const LEN: usize;
    /// Whether it is an array.
    const ARRAY: bool;
    /// Append the words of `v`.
    fn push(v: &Self::Rust, out: &mut Vec<u32>) -> Result<(), String>;
}

fn u32_word(v: usize) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{v} exceeds 32-bit GPU indexing"))
}

fn i32_word(v: i64) -> Result<u32, String> {
    i32::try_from(v).map(|x| x as u32).map_err(|_| format!("{v} does not fit in i32"))
}

impl ParamTy for u32 {
    type Rust = usize;
    const TY: Ty = Ty::U32;
    const LEN: usize = 1;
    const ARRAY: bool = false;
    fn push(v: &usize, out: &mut Vec<u32>) -> Result<(), String> {
        out.push(u32_word(*v)?);
        Ok(())
    }
}

impl ParamTy for i32 {
    type Rust = i64;
    const TY: Ty = Ty::I32;
    const LEN: usize = 1;
    const ARRAY: bool = false;
    fn push(v: &i64, out: &mut Vec<u32>) -> Result<(), String> {
        out.push(i32_word(*v)?);
        Ok(())
    }
}

impl ParamTy for f32 {
    type Rust = f32;
    const TY: Ty = Ty::F32;
    const LEN: usize = 1;
    const ARRAY: bool = false;
    fn push(v: &f32, out: &mut Vec<u32>) -> Result<(), String> {
        out.push(v.to_bits());
        Ok(())
    }
}

fn push_array<T: Copy>(
    v: &[T],
    n: usize,
    word: impl Fn(T) -> Result<u32, String>,
    out: &mut Vec<u32>,
) -> Result<(), String> {
    if v.len() > n {
        return Err(format!("{} values where the kernel holds at most {n}", v.len()));
    }
    for &x in v {
        out.push(word(x)?);
    }
    out.resize(out.len() + n - v.len(), 0);
    Ok(())
}

impl<const N: usize> ParamTy for [u32; N] {
    type Rust = Vec<usize>;
    const TY: Ty = Ty::U32;
    const LEN: usize = N;
    const ARRAY: bool = true;
    fn push(v: &Vec<usize>, out: &mut Vec<u32>) -> Result<(), String> {
        push_array(v, N, u32_word, out)
    }
}

impl<const N: usize> ParamTy for [i32; N] {
    type Rust = Vec<i64>;
    const TY: Ty = Ty::I32;
    const LEN: usize = N;
    const ARRAY: bool = true;
    fn push(v: &Vec<i64>, out: &mut Vec<u32>) -> Result<(), String> {
        push_array(v, N, i32_word, out)
    }
}

impl<const N: usize> ParamTy for [f32; N] {
    type Rust = Vec<f32>;
    const TY: Ty = Ty::F32;
    const LEN: usize = N;
    const ARRAY: bool = true;
    fn push(v: &Vec<f32>, out: &mut Vec<u32>) -> Result<(), String> {
        push_array(v, N, |x: f32| Ok(x.to_bits()), out)
    }
}

/// A parameter block a planner fills by name.
pub trait Params {
    /// Its layout (what the generator writes as WGSL).
    const LAYOUT: Layout;
    /// The words of the uniform block, in layout order.
    fn words(&self) -> Result<Vec<u32>, GpuError>;
}

/// Declares a kernel's parameter block: a Rust struct whose fields take
/// `usize` for `u32`, `i64` for `i32`, `f32` for `f32` and `Vec` of those
/// for arrays `[T; N]`, and its [`Layout`].
macro_rules! wgsl_params {
    ($(
        $(#[$m:meta])*
        $vis:vis struct $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }
    )*) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Default)]
        $vis struct $name { $($(#[$fm])* pub $f: <$t as $crate::wgsl::ParamTy>::Rust),* }

        impl $crate::wgsl::Params for $name {
            const LAYOUT: $crate::wgsl::Layout = $crate::wgsl::Layout {
                name: stringify!($name),
                fields: &[$($crate::wgsl::Field {
                    name: stringify!($f),
                    ty: <$t as $crate::wgsl::ParamTy>::TY,
                    len: <$t as $crate::wgsl::ParamTy>::LEN,
                    array: <$t as $crate::wgsl::ParamTy>::ARRAY,
                }),*],
            };
            fn words(&self) -> ::std::result::Result<Vec<u32>, $crate::GpuError> {
                let mut w = Vec::with_capacity(Self::LAYOUT.words());
                $(<$t as $crate::wgsl::ParamTy>::push(&self.$f, &mut w).map_err(|e| {
                    $crate::GpuError::Limit(format!("{}.{}: {e}", stringify!($name), stringify!($f)))
                })?;)*
                Ok(w)
            }
        }
        const _: () = assert!(<$name as $crate::wgsl::Params>::LAYOUT.words() <= $crate::kernels::PARAM_WORDS);
    )*};
}
pub(crate) use wgsl_params;

/// A named table of op codes (the values of an `override` or a switch).
#[derive(Debug, Clone, Copy)]
pub struct Codes {
    /// Prefix of the WGSL constants (`UNARY` gives `UNARY_ABS`).
    pub prefix: &'static str,
    /// Name and value of each code.
    pub codes: &'static [(&'static str, u32)],
}

/// Declares op codes: a Rust module of `u32` constants and its [`Codes`]
/// table (`TABLE`), written to WGSL as `PREFIX_NAME` constants.
#[allow(unused_macros)]
macro_rules! wgsl_codes {
    ($(
        $(#[$m:meta])*
        $vis:vis mod $module:ident : $prefix:ident { $($(#[$cm:meta])* $c:ident = $v:expr),* $(,)? }
    )*) => {$(
        $(#[$m])*
        $vis mod $module {
            // A code may be named only by the WGSL side.
            $($(#[$cm])* #[allow(dead_code)] pub const $c: u32 = $v;)*
            /// These codes, for the WGSL generator.
            pub const TABLE: $crate::wgsl::Codes = $crate::wgsl::Codes {
                prefix: stringify!($prefix),
                codes: &[$((stringify!($c), $v)),*],
            };
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use wgsl_codes;

/// `Pool2dParams` -> `pool2d_params`.
fn snake(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// A storage buffer a kernel family binds. Bindings are numbered from 1 in
/// table order (binding 0 is the parameter block), which is the order a
/// dispatch passes its buffers in: outputs first, then inputs.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The WGSL variable's name.
    pub name: &'static str,
    /// Whether kernels write it.
    pub write: bool,
    /// WGSL element type (`f32`, `u32`, `i32`, `atomic<u32>`).
    pub elem: &'static str,
}

/// A buffer kernels only read.
pub const fn read(name: &'static str, elem: &'static str) -> Binding {
    Binding { name, write: false, elem }
}

/// A buffer kernels write (and may read).
pub const fn write(name: &'static str, elem: &'static str) -> Binding {
    Binding { name, write: true, elem }
}

/// A kernel entry point the generator writes, calling the family's
/// hand-written body.
#[derive(Debug, Clone, Copy)]
pub struct Each {
    /// Entry point name (what planners ask the pipeline cache for).
    pub entry: &'static str,
    /// How it is invoked.
    pub kind: EntryKind,
}

/// How a generated entry point runs.
#[derive(Debug, Clone, Copy)]
pub enum EntryKind {
    /// One invocation per item, in 1-D workgroups of
    /// [`WG`](crate::kernels::WG) over the 2-D grid of `linear_index`: it
    /// loads the parameter block and calls `fn <entry>_at(i: u32, p:
    /// <Params>)` for every `i` below the block's `u32` field `count`.
    PerItem {
        /// Its parameter block.
        params: &'static Layout,
        /// The field holding the number of items.
        count: &'static str,
    },
    /// One 16x16 workgroup per output tile of the shared tiled product
    /// ([`TILED`](crate::kernels::TILED)): it calls `fn <entry>_tile(wid,
    /// lid, li)` with the workgroup id, the local id and the local index.
    Tile,
}

/// An entry point over `count` items of `params` (see [`EntryKind::PerItem`]).
pub const fn each(entry: &'static str, params: &'static Layout, count: &'static str) -> Each {
    Each { entry, kind: EntryKind::PerItem { params, count } }
}

/// An entry point over output tiles (see [`EntryKind::Tile`]).
pub const fn tiled(entry: &'static str) -> Each {
    Each { entry, kind: EntryKind::Tile }
}

/// Hand-written WGSL that several families share (`shaders/shared/`), with
/// the constants it reads, which the Rust side owns. The generator copies
/// it into each family's generated file.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// Its file under `shaders/`.
    pub file: &'static str,
    /// Its text.
    pub text: &'static str,
    /// Constants written before it.
    pub consts: &'static [(&'static str, u32)],
}

/// Everything a kernel family's WGSL shares with the Rust side.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// Op-code tables.
    pub codes: &'static [Codes],
    /// Parameter blocks.
    pub layouts: &'static [Layout],
    /// Storage buffers, from binding 1.
    pub bindings: &'static [Binding],
    /// Generated one-invocation-per-item entry points.
    pub entries: &'static [Each],
    /// Shared hand-written parts.
    pub parts: &'static [Part],
}

impl Family {
    /// Whether every generated entry point counts its items by a `u32`
    /// scalar field of its parameter block, and every block is listed.
    #[cfg(test)]
    pub(crate) fn check(&self) -> Result<(), String> {
        for e in self.entries {
            let EntryKind::PerItem { params, count } = e.kind else { continue };
            if !self.layouts.iter().any(|l| l.name == params.name) {
                return Err(format!("entry {} reads {}, which the family does not list", e.entry, params.name));
            }
            let ok = params.fields.iter().any(|f| f.name == count && f.ty == Ty::U32 && !f.array);
            if !ok {
                return Err(format!("entry {}: {} has no u32 field {count}", e.entry, params.name));
            }
        }
        Ok(())
    }
}

/// The generated WGSL of one kernel family: its code constants, its
/// bindings, then per layout a struct of its scalar fields with a loader
/// and an accessor per array field, then its generated entry points.
pub(crate) fn generate(family: &Family) -> String {
    let mut s = String::from("// Generated by strata-gpu's `wgsl` table (`cargo xtask codegen`); do not edit.\n");
    for c in family.codes {
        s.push('\n');
        for (name, v) in c.codes {
            let _ = writeln!(s, "const {}_{name}: u32 = {v}u;", c.prefix);
        }
    }
    if !family.bindings.is_empty() {
        s.push('\n');
    }
    for (i, b) in family.bindings.iter().enumerate() {
        let access = if b.write { "read_write" } else { "read" };
        let _ = writeln!(s, "@group(0) @binding({}) var<storage, {access}> {}: array<{}>;", i + 1, b.name, b.elem);
    }
    for l in family.layouts {
        assert!(l.words() <= PARAM_WORDS, "{} takes {} words", l.name, l.words());
        let snake = l.snake();
        let _ = write!(s, "\nstruct {} {{\n", l.name);
        let scalars: Vec<(usize, &Field)> = offsets(l).filter(|(_, f)| !f.array).collect();
        for (_, f) in &scalars {
            let _ = writeln!(s, "    {}: {},", f.name, f.ty.wgsl());
        }
        if scalars.is_empty() {
            s.push_str("    unused: u32,\n");
        }
        s.push_str("}\n\n");
        let _ = writeln!(s, "fn {snake}() -> {} {{", l.name);
        let args: Vec<String> = if scalars.is_empty() {
            vec!["0u".into()]
        } else {
            scalars.iter().map(|(at, f)| f.ty.read(&format!("{at}u"))).collect()
        };
        let _ = writeln!(s, "    return {}({});\n}}", l.name, args.join(", "));
        for (at, f) in offsets(l).filter(|(_, f)| f.array) {
            let _ = write!(
                s,
                "\nfn {snake}_{}(k: u32) -> {} {{\n    return {};\n}}\n",
                f.name,
                f.ty.wgsl(),
                f.ty.read(&format!("{at}u + k"))
            );
        }
    }
    for part in family.parts {
        let _ = writeln!(s, "\n// ---- shaders/{} ----\n", part.file);
        for (name, v) in part.consts {
            let _ = writeln!(s, "const {name}: u32 = {v}u;");
        }
        s.push('\n');
        s.push_str(part.text);
    }
    for e in family.entries {
        let _ = match e.kind {
            EntryKind::PerItem { params, count } => write!(
                s,
                "\n@compute @workgroup_size({wg})\n\
                 fn {entry}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n\
                 \x20       @builtin(local_invocation_index) lidx: u32) {{\n\
                 \x20   let i = linear_index(wid, nwg, lidx);\n\
                 \x20   let p = {loader}();\n\
                 \x20   if i < p.{count} {{\n\
                 \x20       {entry}_at(i, p);\n\
                 \x20   }}\n\
                 }}\n",
                wg = crate::kernels::WG,
                entry = e.entry,
                loader = params.snake(),
            ),
            EntryKind::Tile => write!(
                s,
                "\n@compute @workgroup_size({edge}, {edge})\n\
                 fn {entry}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,\n\
                 \x20       @builtin(local_invocation_index) li: u32) {{\n\
                 \x20   {entry}_tile(wid, lid, li);\n\
                 }}\n",
                edge = crate::kernels::TILE / 4,
                entry = e.entry,
            ),
        };
    }
    s
}

/// Fields with their first word.
fn offsets(l: &Layout) -> impl Iterator<Item = (usize, &Field)> {
    l.fields.iter().scan(0, |at, f| {
        let here = *at;
        *at += f.len;
        Some((here, f))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    wgsl_params! {
        struct DemoParams { n: u32, offset: i32, scale: f32, shape: [u32; 4] }
    }
    wgsl_codes! {
        mod demo: DEMO { ONE = 1, TWO = 2 }
    }

    #[test]
    fn layout_words_and_wgsl() {
        let p = DemoParams { n: 7, offset: -2, scale: 0.5, shape: vec![2, 3] };
        assert_eq!(p.words().unwrap(), vec![7, (-2i32) as u32, 0.5f32.to_bits(), 2, 3, 0, 0]);
        assert!(DemoParams { shape: vec![1; 5], ..p.clone() }.words().is_err());
        assert!(DemoParams { n: 1 << 33, ..p }.words().is_err());
        let fam = const {
            Family {
                codes: &[demo::TABLE],
                layouts: &[DemoParams::LAYOUT],
                bindings: &[write("out", "f32"), read("x", "u32")],
                entries: &[each("demo", &DemoParams::LAYOUT, "n")],
                parts: &[Part { file: "shared/demo.wgsl", text: "fn demo_part() {}\n", consts: &[("DEMO_K", 4)] }],
            }
        };
        fam.check().unwrap();
        let src = generate(&fam);
        assert!(src.contains("@group(0) @binding(2) var<storage, read> x: array<u32>;"));
        assert!(src.contains("    if i < p.n {\n        demo_at(i, p);\n    }"));
        assert!(src.contains("const DEMO_K: u32 = 4u;\n\nfn demo_part() {}\n"));
        let bad = Family { entries: const { &[each("demo", &DemoParams::LAYOUT, "scale")] }, ..fam };
        assert!(bad.check().is_err());
        assert!(src.contains("const DEMO_TWO: u32 = 2u;"));
        assert!(src.contains(
            "fn demo_params() -> DemoParams {\n    return DemoParams(P(0u), bitcast<i32>(P(1u)), bitcast<f32>(P(2u)));"
        ));
        assert!(src.contains("fn demo_params_shape(k: u32) -> u32 {\n    return P(3u + k);"));
        assert_eq!((demo::ONE, demo::TWO), (1, 2));
    }
}
