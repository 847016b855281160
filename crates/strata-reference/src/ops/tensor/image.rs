//! ImageDecoder: an encoded image (a uint8 tensor holding the file's
//! bytes) to an `[H, W, C]` uint8 tensor, RGB, BGR or grayscale.
//!
//! With the `image-codecs` feature the `image` crate decodes BMP, JPEG,
//! PNG, PNM, TIFF and WebP. Colour images convert to grayscale with the
//! ITU-R 601-2 luma weights in fixed point, as the ONNX reference (Pillow's
//! `convert("L")`) does. Decoders of lossy formats need not agree to the
//! last level: JPEG's inverse DCT and chroma upsampling are implementation
//! choices, and ours differ from libjpeg-turbo's by a level or two.

use strata_ir::ops::tensor::PixelFormat;

use crate::bail;
use crate::error::KResult;
use crate::ops::Args;
use crate::value::Value;

/// Run ImageDecoder.
pub fn decode(args: &Args, format: PixelFormat) -> KResult<Vec<Value>> {
    let t = args.tensor(0)?;
    if t.dtype != strata_ir::DType::U8 || t.rank() != 1 {
        bail!("encoded_stream must be a 1-D uint8 tensor, got {} of shape {:?}", t.dtype, t.shape);
    }
    let bytes: Vec<u8> = t.i()?.iter().map(|&v| v as u8).collect();
    imp::decode(&bytes, format)
}

#[cfg(feature = "image-codecs")]
mod imp {
    use super::*;
    use crate::ops::one;
    use crate::value::Tensor;

    pub(super) fn decode(bytes: &[u8], format: PixelFormat) -> KResult<Vec<Value>> {
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes));
        reader = reader
            .with_guessed_format()
            .map_err(|e| crate::error::KernelError::new(format!("cannot read the image: {e}")))?;
        // Untrusted input: no decode may allocate past the session's element limit.
        let max = crate::util::max_elements();
        let mut limits = image::Limits::default();
        limits.max_alloc = Some((max as u64).saturating_mul(4));
        limits.max_image_width = Some(u32::try_from(max).unwrap_or(u32::MAX));
        limits.max_image_height = Some(u32::try_from(max).unwrap_or(u32::MAX));
        reader.limits(limits);
        if reader.format().is_none() {
            bail!("the image format is not recognised (decoded here: BMP, JPEG, PNG, PNM, TIFF, WebP)");
        }
        let img =
            reader.decode().map_err(|e| crate::error::KernelError::new(format!("cannot decode the image: {e}")))?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let rgb = img.to_rgb8().into_raw();
        crate::util::check_numel(&[h, w, 3])?;
        let (c, px): (usize, Vec<i128>) = match format {
            PixelFormat::Rgb => (3, rgb.iter().map(|&v| i128::from(v)).collect()),
            PixelFormat::Bgr => (3, rgb.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).map(i128::from).collect()),
            PixelFormat::Grayscale => (1, rgb.chunks_exact(3).map(|p| i128::from(luma(p[0], p[1], p[2]))).collect()),
        };
        one(Tensor::from_i(strata_ir::DType::U8, vec![h, w, c], px)?)
    }

    /// ITU-R 601-2 luma, `(299 R + 587 G + 114 B) / 1000` in 16-bit fixed
    /// point with rounding (Pillow's `convert("L")`).
    fn luma(r: u8, g: u8, b: u8) -> u8 {
        let l = (u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16;
        l.min(255) as u8
    }
}

#[cfg(not(feature = "image-codecs"))]
mod imp {
    use super::*;

    pub(super) fn decode(_bytes: &[u8], _format: PixelFormat) -> KResult<Vec<Value>> {
        bail!("ImageDecoder needs image codecs, which this build leaves out (the `image-codecs` feature)")
    }
}

#[cfg(all(test, feature = "image-codecs"))]
mod tests {
    use super::*;
    use crate::value::Tensor;

    fn run(bytes: &[u8], format: PixelFormat) -> KResult<Tensor> {
        let t =
            Tensor::from_i(strata_ir::DType::U8, vec![bytes.len()], bytes.iter().map(|&b| i128::from(b)).collect())?;
        let out = decode(&Args { vals: vec![Some(Value::Tensor(t))] }, format)?;
        out.into_iter().next().expect("one output").into_tensor()
    }

    /// A binary PPM (P6) image of `w` x `h` pixels.
    fn ppm(w: usize, h: usize, px: &[u8]) -> Vec<u8> {
        let mut b = format!("P6\n{w} {h}\n255\n").into_bytes();
        b.extend_from_slice(px);
        b
    }

    #[test]
    fn decodes_rgb_bgr_and_pillow_grayscale() -> KResult<()> {
        let px = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 100, 50, 255, 255, 255];
        let img = ppm(3, 2, &px);
        let rgb = run(&img, PixelFormat::Rgb)?;
        assert_eq!(rgb.shape, vec![2, 3, 3]);
        assert_eq!(rgb.i()?, px.iter().map(|&v| i128::from(v)).collect::<Vec<_>>());
        let bgr = run(&img, PixelFormat::Bgr)?;
        let want: Vec<i128> = px.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).map(i128::from).collect();
        assert_eq!(bgr.i()?, want);
        // Pillow's L = R * 299/1000 + G * 587/1000 + B * 114/1000, rounded.
        let gray = run(&img, PixelFormat::Grayscale)?;
        assert_eq!(gray.shape, vec![2, 3, 1]);
        assert_eq!(gray.i()?, vec![76, 150, 29, 18, 124, 255]);
        Ok(())
    }

    #[test]
    fn bad_and_oversized_streams_are_errors() {
        let e = run(b"not an image at all", PixelFormat::Rgb).unwrap_err().to_string();
        assert!(e.contains("not recognised"), "{e}");
        let e = run(&ppm(4, 4, &[1, 2, 3]), PixelFormat::Rgb).unwrap_err().to_string();
        assert!(e.contains("cannot decode"), "{e}");
        // A header claiming 10^5 x 10^5 pixels is refused before allocating.
        crate::util::set_max_elements(1 << 20);
        let e = run(&ppm(100_000, 100_000, &[0; 12]), PixelFormat::Rgb).unwrap_err().to_string();
        assert!(e.contains("cannot decode") || e.contains("limit"), "{e}");
    }
}
