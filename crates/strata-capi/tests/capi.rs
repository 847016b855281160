//! The C API, called through its Rust symbols, and the committed header.

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr::{null, null_mut};

use strata_capi::*;

fn last_error() -> String {
    unsafe { CStr::from_ptr(strata_last_error()) }.to_string_lossy().into_owned()
}

#[test]
fn header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = crate_dir.join("include").join("strata.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings =
        cbindgen::Builder::new().with_crate(crate_dir).with_config(config).generate().expect("generate the header");
    let fresh = std::env::temp_dir().join(format!("strata-capi-{}.h", std::process::id()));
    bindings.write_to_file(&fresh);
    let fresh_text = std::fs::read_to_string(&fresh).unwrap();
    std::fs::remove_file(&fresh).unwrap();
    if std::env::var_os("STRATA_UPDATE_HEADER").is_some() {
        std::fs::write(&committed, &fresh_text).unwrap();
        return;
    }
    let old = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        old == fresh_text,
        "{} is out of date with src/lib.rs; regenerate it with\n    STRATA_UPDATE_HEADER=1 cargo test -p strata-capi --test capi header_is_up_to_date",
        committed.display()
    );
}

fn tiny_mlp_bytes() -> Vec<u8> {
    strata::ir::artifact::write(&strata::examples::tiny_mlp()).unwrap()
}

#[test]
fn load_inspect_run_and_free() {
    unsafe {
        let mut opts = null_mut();
        assert_eq!(strata_options_create(&mut opts), StrataStatus::Ok);
        let backend = CString::new("reference").unwrap();
        assert_eq!(strata_options_set_backend(opts, backend.as_ptr()), StrataStatus::Ok);
        assert_eq!(strata_options_set_strict(opts, true), StrataStatus::Ok);
        assert_eq!(strata_options_set_limits(opts, 1 << 20, 0, 1000), StrataStatus::Ok);
        let bytes = tiny_mlp_bytes();
        let mut s = null_mut();
        assert_eq!(strata_session_create_from_bytes(bytes.as_ptr(), bytes.len(), opts, &mut s), StrataStatus::Ok);
        strata_options_free(opts);

        let (mut n_in, mut n_out) = (0usize, 0usize);
        assert_eq!(strata_session_input_count(s, &mut n_in), StrataStatus::Ok);
        assert_eq!(strata_session_output_count(s, &mut n_out), StrataStatus::Ok);
        assert_eq!((n_in, n_out), (1, 1));
        let mut name: *const c_char = null();
        assert_eq!(strata_session_input_name(s, 0, &mut name), StrataStatus::Ok);
        assert_eq!(CStr::from_ptr(name).to_str().unwrap(), "x");
        let mut dt = StrataDtype::Undefined;
        assert_eq!(strata_session_input_dtype(s, 0, &mut dt), StrataStatus::Ok);
        assert_eq!(dt, StrataDtype::Float);
        let (mut rank, mut dims) = (0i64, null());
        assert_eq!(strata_session_input_shape(s, 0, &mut rank, &mut dims), StrataStatus::Ok);
        assert_eq!(std::slice::from_raw_parts(dims, rank as usize), &[-1, 4]);
        assert_eq!(strata_session_output_shape(s, 0, &mut rank, &mut dims), StrataStatus::Ok);
        assert_eq!(std::slice::from_raw_parts(dims, rank as usize), &[-1, 3]);
        assert_eq!(strata_session_output_name(s, 1, &mut name), StrataStatus::InvalidArgument);
        assert!(last_error().contains("output index 1 is out of range"), "{}", last_error());

        // Borrowed and copied inputs give the same outputs as the Rust API.
        let x: [f32; 8] = [1.0, -2.0, 0.5, 3.0, 0.0, 1.0, 2.0, -1.0];
        let shape = [2i64, 4];
        let reference = strata::SessionOptions { backends: vec!["reference".into()], ..Default::default() };
        let want = strata::Session::from_model(strata::examples::tiny_mlp(), reference)
            .unwrap()
            .run(&[("x", strata::Value::Tensor(strata::Tensor::from_f32(vec![2, 4], &x).unwrap()))])
            .unwrap();
        let want = want[0].1.as_tensor().unwrap().bytes().unwrap().as_slice().to_vec();
        for copy in [false, true] {
            let mut t = null_mut();
            let create = if copy { strata_tensor_create_copy } else { strata_tensor_create };
            assert_eq!(create(StrataDtype::Float, shape.as_ptr(), 2, x.as_ptr().cast(), 32, &mut t), StrataStatus::Ok);
            // A borrowed tensor reads the caller's memory in place; a copy does not.
            let (mut tdata, mut tlen) = (null(), 0usize);
            assert_eq!(strata_tensor_data(t, &mut tdata, &mut tlen), StrataStatus::Ok);
            assert_eq!((tdata == x.as_ptr().cast(), tlen), (!copy, 32));
            let xname = CString::new("x").unwrap();
            let names = [xname.as_ptr()];
            let inputs = [t as *const StrataTensor];
            let mut outs = [null_mut(); 1];
            let st = strata_session_run(s, names.as_ptr(), inputs.as_ptr(), 1, outs.as_mut_ptr(), 1);
            assert_eq!(st, StrataStatus::Ok, "{}", last_error());
            assert_eq!(last_error(), "");
            let (mut r, mut d) = (0usize, null());
            assert_eq!(strata_tensor_shape(outs[0], &mut r, &mut d), StrataStatus::Ok);
            assert_eq!(std::slice::from_raw_parts(d, r), &[2, 3]);
            let (mut data, mut len) = (null(), 0usize);
            assert_eq!(strata_tensor_data(outs[0], &mut data, &mut len), StrataStatus::Ok);
            assert_eq!(std::slice::from_raw_parts(data.cast::<u8>(), len), want.as_slice());
            let mut odt = StrataDtype::Undefined;
            assert_eq!(strata_tensor_dtype(outs[0], &mut odt), StrataStatus::Ok);
            assert_eq!(odt, StrataDtype::Float);
            strata_tensor_free(outs[0]);
            strata_tensor_free(t);
        }
        strata_session_free(s);
    }
}

#[test]
fn errors_are_status_codes_with_messages() {
    unsafe {
        let mut s = null_mut();
        assert_eq!(strata_session_create_from_file(null(), null(), &mut s), StrataStatus::InvalidArgument);
        assert!(last_error().contains("path is NULL"));
        let missing = CString::new("/nonexistent/model.onnx").unwrap();
        assert_eq!(strata_session_create_from_file(missing.as_ptr(), null(), &mut s), StrataStatus::LoadFailed);
        assert!(last_error().contains("/nonexistent/model.onnx"), "{}", last_error());
        assert!(s.is_null(), "out must not be written on failure");
        let junk = b"\xff\xff\xff\xff garbage";
        assert_eq!(
            strata_session_create_from_bytes(junk.as_ptr(), junk.len(), null(), &mut s),
            StrataStatus::LoadFailed
        );
        assert!(last_error().contains("cannot"), "{}", last_error());
        let mut opts = null_mut();
        assert_eq!(strata_options_create(&mut opts), StrataStatus::Ok);
        assert_eq!(last_error(), "", "a successful call clears the message");
        let nope = CString::new("nope").unwrap();
        assert_eq!(strata_options_set_backend(opts, nope.as_ptr()), StrataStatus::InvalidArgument);
        assert!(last_error().contains("unknown backend 'nope'"));
        strata_options_free(opts);
        // Tensors: size mismatch, negative dimension, NULL data.
        let mut t = null_mut();
        let v = [0f32; 4];
        assert_eq!(
            strata_tensor_create(StrataDtype::Float, [5i64].as_ptr(), 1, v.as_ptr().cast(), 16, &mut t),
            StrataStatus::InvalidArgument
        );
        assert!(last_error().contains("needs 20 bytes, got 16"), "{}", last_error());
        assert_eq!(
            strata_tensor_create(StrataDtype::Float, [-1i64].as_ptr(), 1, v.as_ptr().cast(), 16, &mut t),
            StrataStatus::InvalidArgument
        );
        assert_eq!(
            strata_tensor_create(StrataDtype::Float, [4i64].as_ptr(), 1, null(), 16, &mut t),
            StrataStatus::InvalidArgument
        );
        assert_eq!(
            strata_tensor_create(StrataDtype::String, [4i64].as_ptr(), 1, v.as_ptr().cast(), 16, &mut t),
            StrataStatus::Unsupported
        );
        assert!(t.is_null());
        // Running with a wrong input is RUN_FAILED, with the model's message.
        let bytes = tiny_mlp_bytes();
        assert_eq!(strata_session_create_from_bytes(bytes.as_ptr(), bytes.len(), null(), &mut s), StrataStatus::Ok);
        assert_eq!(
            strata_tensor_create(StrataDtype::Float, [1i64, 4].as_ptr(), 2, v.as_ptr().cast(), 16, &mut t),
            StrataStatus::Ok
        );
        let bad = CString::new("nope").unwrap();
        let mut outs = [null_mut(); 1];
        let st = strata_session_run(s, [bad.as_ptr()].as_ptr(), [t as *const _].as_ptr(), 1, outs.as_mut_ptr(), 1);
        assert_eq!(st, StrataStatus::RunFailed);
        assert!(last_error().contains("unknown input 'nope'"), "{}", last_error());
        let st = strata_session_run(s, null(), null(), 0, outs.as_mut_ptr(), 0);
        assert_eq!(st, StrataStatus::InvalidArgument);
        assert!(last_error().contains("holds 0 tensors"), "{}", last_error());
        assert_eq!(strata_session_run(null(), null(), null(), 0, outs.as_mut_ptr(), 1), StrataStatus::InvalidArgument);
        assert!(outs[0].is_null());
        strata_tensor_free(t);
        strata_session_free(s);
        // Freeing NULL is fine.
        strata_session_free(null_mut());
        strata_tensor_free(null_mut());
        strata_options_free(null_mut());
        assert!(!CStr::from_ptr(strata_version()).to_bytes().is_empty());
    }
}

#[test]
fn one_session_is_shared_by_threads() {
    let bytes = tiny_mlp_bytes();
    let mut s = null_mut();
    unsafe {
        assert_eq!(strata_session_create_from_bytes(bytes.as_ptr(), bytes.len(), null(), &mut s), StrataStatus::Ok);
    }
    // The session is thread-safe; share its address with the threads.
    let addr = s as usize;
    let run = |seed: f32| -> Vec<u8> {
        let x: Vec<f32> = (0..4).map(|i| seed + i as f32).collect();
        unsafe {
            let mut t = null_mut();
            assert_eq!(
                strata_tensor_create(StrataDtype::Float, [1i64, 4].as_ptr(), 2, x.as_ptr().cast(), 16, &mut t),
                StrataStatus::Ok
            );
            let xname = CString::new("x").unwrap();
            let mut outs = [null_mut(); 1];
            let st = strata_session_run(
                addr as *const StrataSession,
                [xname.as_ptr()].as_ptr(),
                [t as *const _].as_ptr(),
                1,
                outs.as_mut_ptr(),
                1,
            );
            assert_eq!(st, StrataStatus::Ok, "{}", last_error());
            let (mut data, mut len) = (null(), 0usize);
            assert_eq!(strata_tensor_data(outs[0], &mut data, &mut len), StrataStatus::Ok);
            let v = std::slice::from_raw_parts(data.cast::<u8>(), len).to_vec();
            strata_tensor_free(outs[0]);
            strata_tensor_free(t);
            v
        }
    };
    let want: Vec<Vec<u8>> = (0..4).map(|i| run(i as f32)).collect();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..50 {
                    for (i, w) in want.iter().enumerate() {
                        assert_eq!(&run(i as f32), w);
                    }
                }
            });
        }
    });
    unsafe { strata_session_free(s) };
}

#[test]
fn limits_from_options_apply() {
    unsafe {
        let mut opts = null_mut();
        assert_eq!(strata_options_create(&mut opts), StrataStatus::Ok);
        assert_eq!(strata_options_set_limits(opts, 0, 2, 0), StrataStatus::Ok);
        let bytes = tiny_mlp_bytes();
        let mut s = null_mut();
        let st = strata_session_create_from_bytes(bytes.as_ptr(), bytes.len(), opts, &mut s);
        assert_eq!(st, StrataStatus::LoadFailed);
        assert!(last_error().contains("3 nodes, more than the limit of 2"), "{}", last_error());
        assert!(s.is_null());
        // A memory limit smaller than the weights fails at load too.
        assert_eq!(strata_options_set_limits(opts, 0, 1000, 0), StrataStatus::Ok);
        assert_eq!(strata_options_set_memory_limit(opts, 16), StrataStatus::Ok);
        let st = strata_session_create_from_bytes(bytes.as_ptr(), bytes.len(), opts, &mut s);
        assert_eq!(st, StrataStatus::LoadFailed);
        assert!(last_error().contains("more than the memory limit of 16 bytes"), "{}", last_error());
        // 0 lifts the limit again.
        assert_eq!(strata_options_set_memory_limit(opts, 0), StrataStatus::Ok);
        let st = strata_session_create_from_bytes(bytes.as_ptr(), bytes.len(), opts, &mut s);
        assert_eq!(st, StrataStatus::Ok, "{}", last_error());
        strata_session_free(s);
        strata_options_free(opts);
    }
}

#[test]
fn cpu_backend_thread_count_does_not_change_results() {
    let bytes = tiny_mlp_bytes();
    let x: [f32; 8] = [1.0, -2.0, 0.5, 3.0, 0.0, 1.0, 2.0, -1.0];
    let run_with = |threads: u32| -> Vec<f32> {
        unsafe {
            let mut opts = null_mut();
            assert_eq!(strata_options_create(&mut opts), StrataStatus::Ok);
            let backend = CString::new("cpu").unwrap();
            assert_eq!(strata_options_set_backend(opts, backend.as_ptr()), StrataStatus::Ok);
            assert_eq!(strata_options_set_strict(opts, true), StrataStatus::Ok);
            assert_eq!(strata_options_set_threads(opts, threads), StrataStatus::Ok);
            let mut s = null_mut();
            let st = strata_session_create_from_bytes(bytes.as_ptr(), bytes.len(), opts, &mut s);
            assert_eq!(st, StrataStatus::Ok, "{}", last_error());
            strata_options_free(opts);
            let mut t = null_mut();
            let shape = [2i64, 4];
            assert_eq!(
                strata_tensor_create(StrataDtype::Float, shape.as_ptr(), 2, x.as_ptr().cast(), 32, &mut t),
                StrataStatus::Ok
            );
            let xname = CString::new("x").unwrap();
            let mut outs = [null_mut(); 1];
            let st =
                strata_session_run(s, [xname.as_ptr()].as_ptr(), [t as *const _].as_ptr(), 1, outs.as_mut_ptr(), 1);
            assert_eq!(st, StrataStatus::Ok, "{}", last_error());
            let (mut data, mut len) = (null(), 0usize);
            assert_eq!(strata_tensor_data(outs[0], &mut data, &mut len), StrataStatus::Ok);
            let v = std::slice::from_raw_parts(data.cast::<f32>(), len / 4).to_vec();
            strata_tensor_free(outs[0]);
            strata_tensor_free(t);
            strata_session_free(s);
            v
        }
    };
    let one = run_with(1);
    for threads in [0, 2, 7] {
        assert_eq!(run_with(threads), one, "{threads} threads");
    }
    // And it agrees with the reference backend.
    let reference = strata::SessionOptions { backends: vec!["reference".into()], ..Default::default() };
    let want = strata::Session::from_model(strata::examples::tiny_mlp(), reference)
        .unwrap()
        .run(&[("x", strata::Value::Tensor(strata::Tensor::from_f32(vec![2, 4], &x).unwrap()))])
        .unwrap();
    let want = want[0].1.as_tensor().unwrap().to_f64_vec();
    for (a, b) in one.iter().zip(&want) {
        assert!((*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    unsafe {
        assert_eq!(strata_options_set_threads(null_mut(), 2), StrataStatus::InvalidArgument);
    }
}
