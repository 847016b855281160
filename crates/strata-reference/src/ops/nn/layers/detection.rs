//! NonMaxSuppression: greedy per-(batch, class) selection of boxes in
//! decreasing score order, dropping any box whose intersection-over-union
//! with an already selected box exceeds the threshold.

use super::float_input;
use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, one};
use crate::value::{Tensor, Value};

/// A box as `(y_min, x_min, y_max, x_max)`.
type Corners = (f64, f64, f64, f64);

/// Convert one box to corners: `center_point_box` 0 gives any diagonal
/// pair `[y1, x1, y2, x2]`, 1 gives `[x_center, y_center, width, height]`.
fn corners(b: &[f64], center_point_box: i64) -> Corners {
    if center_point_box == 0 {
        (b[0].min(b[2]), b[1].min(b[3]), b[0].max(b[2]), b[1].max(b[3]))
    } else {
        let (cx, cy, w, h) = (b[0], b[1], b[2], b[3]);
        (cy - h / 2.0, cx - w / 2.0, cy + h / 2.0, cx + w / 2.0)
    }
}

/// Intersection over union of two boxes (0 when they do not overlap or a
/// box is empty).
fn iou(a: Corners, b: Corners) -> f64 {
    let ih = a.2.min(b.2) - a.0.max(b.0);
    let iw = a.3.min(b.3) - a.1.max(b.1);
    if ih <= 0.0 || iw <= 0.0 {
        return 0.0;
    }
    let inter = ih * iw;
    let area_a = (a.2 - a.0) * (a.3 - a.1);
    let area_b = (b.2 - b.0) * (b.3 - b.1);
    let union = area_a + area_b - inter;
    if area_a <= 0.0 || area_b <= 0.0 || union <= 0.0 {
        return 0.0;
    }
    inter / union
}

/// Run NonMaxSuppression. Output: int64 `[num_selected, 3]` rows of
/// `(batch_index, class_index, box_index)`.
pub fn non_max_suppression(args: &Args, center_point_box: i64) -> KResult<Vec<Value>> {
    if center_point_box != 0 && center_point_box != 1 {
        bail!("center_point_box must be 0 or 1, got {center_point_box}");
    }
    let boxes = float_input(args, 0, "boxes")?;
    let scores = float_input(args, 1, "scores")?;
    if boxes.rank() != 3 || boxes.shape[2] != 4 {
        bail!("boxes must have shape [num_batches, num_boxes, 4], got {:?}", boxes.shape);
    }
    if scores.rank() != 3 || scores.shape[0] != boxes.shape[0] || scores.shape[2] != boxes.shape[1] {
        bail!(
            "scores must have shape [num_batches, num_classes, num_boxes] matching boxes {:?}, got {:?}",
            boxes.shape,
            scores.shape
        );
    }
    // Optional scalar inputs; an omitted or empty tensor takes the default.
    let opt_scalar = |i: usize| -> KResult<Option<f64>> {
        match args.opt_tensor(i)? {
            Some(t) if t.numel() > 0 => Ok(Some(t.to_f64()?[0])),
            _ => Ok(None),
        }
    };
    let max_per_class = match args.opt_tensor(2)? {
        Some(t) if t.numel() > 0 => t.to_i64()?[0].max(0) as u64,
        _ => 0,
    };
    let iou_threshold = opt_scalar(3)?.unwrap_or(0.0);
    let score_threshold = opt_scalar(4)?;
    let (n_batches, n_boxes, n_classes) = (boxes.shape[0], boxes.shape[1], scores.shape[1]);
    let bv = boxes.f()?;
    let sv = scores.f()?;
    let mut out: Vec<i64> = Vec::new();
    for b in 0..n_batches {
        let boxes_of_batch: Vec<Corners> = (0..n_boxes)
            .map(|i| corners(&bv[(b * n_boxes + i) * 4..(b * n_boxes + i + 1) * 4], center_point_box))
            .collect();
        for c in 0..n_classes {
            let class_scores = &sv[(b * n_classes + c) * n_boxes..(b * n_classes + c + 1) * n_boxes];
            let mut candidates: Vec<usize> =
                (0..n_boxes).filter(|&i| score_threshold.is_none_or(|t| class_scores[i] > t)).collect();
            // Highest score first; equal scores keep the lower box index first.
            candidates.sort_by(|&i, &j| class_scores[j].total_cmp(&class_scores[i]).then(i.cmp(&j)));
            let mut selected: Vec<usize> = Vec::new();
            for i in candidates {
                if selected.len() as u64 >= max_per_class {
                    break;
                }
                if !selected.iter().any(|&s| iou(boxes_of_batch[i], boxes_of_batch[s]) > iou_threshold) {
                    selected.push(i);
                }
            }
            for s in selected {
                out.extend([b as i64, c as i64, s as i64]);
            }
        }
    }
    let n = out.len() / 3;
    one(Tensor::i64s(vec![n, 3], out)?)
}
