//! numpy inputs as the slices the `vexfs` crate takes: used in place when
//! they already are C-contiguous, aligned arrays of the right dtype (the
//! kernel then reads the caller's array itself), converted by numpy once
//! otherwise (another dtype, a strided view, a list).

use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyTuple};

use crate::error::Failure;

/// Who is asking, for messages: `"{path}: {op} not sent: {reason}"`, the
/// form of the library's own refusals before an ioctl.
pub(crate) struct Ctx<'a> {
    pub path: &'a std::path::Path,
    pub op: &'static str,
}

impl Ctx<'_> {
    pub(crate) fn message(&self, reason: impl std::fmt::Display) -> String {
        format!("{}: {} not sent: {reason}", self.path.display(), self.op)
    }

    pub(crate) fn value(&self, reason: impl std::fmt::Display) -> Failure {
        Failure::Value(self.message(reason))
    }

    fn type_error(&self, reason: impl std::fmt::Display) -> Failure {
        Failure::Type(self.message(reason))
    }
}

/// `numpy.require(obj, dtype, ["C", "A", "E"])`: a C-contiguous, aligned
/// base-class ndarray of `dtype`, `obj` itself when it already is one.
fn require<'py>(obj: &Bound<'py, PyAny>, dtype: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let flags = PyList::new(py, ["C", "A", "E"])?;
    np.call_method1("require", (obj, np.getattr(dtype)?, flags))
}

/// Whether the kernel can read `a` as it is: C order, aligned.
fn in_place<T, D>(a: &Bound<'_, numpy::PyArray<T, D>>) -> bool {
    a.is_c_contiguous() && a.is_aligned()
}

/// `obj` as float32 rows: a 2-D array is rows as it is, a 1-D array is one
/// row. Anything numpy can turn into float32 is accepted (float64 is
/// rounded, integers converted); `obj` is used in place when it is a
/// C-contiguous, aligned float32 array.
pub(crate) fn rows_f32<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    ctx: &Ctx<'_>,
) -> Result<Bound<'py, PyArray2<f32>>, PyErr> {
    let arr: Bound<'py, PyArrayDyn<f32>> = match obj.cast::<PyArrayDyn<f32>>() {
        Ok(a) if in_place(a) => a.clone(),
        _ => require(obj, "float32")?.cast_into::<PyArrayDyn<f32>>()?,
    };
    match arr.ndim() {
        2 => Ok(arr.cast_into::<PyArray2<f32>>()?),
        1 => {
            let n = arr.len();
            // A view of the same memory: a C-contiguous array reshapes
            // without a copy.
            Ok(arr.reshape([1, n])?)
        }
        n => Err(ctx
            .value(format!(
                "{what} must be one vector (1-D) or rows of vectors (2-D), not a {n}-D array"
            ))
            .into_py(obj.py())),
    }
}

/// `obj` as u64 ids: one int, or a 1-D sequence or array of ints. Signed
/// integers must not be negative; floats and booleans are refused (a
/// fractional or boolean id is a mistake, not an id). Used in place when
/// `obj` is a C-contiguous, aligned uint64 array.
pub(crate) fn ids<'py>(
    obj: &Bound<'py, PyAny>,
    ctx: &Ctx<'_>,
) -> Result<Bound<'py, PyArray1<u64>>, PyErr> {
    let py = obj.py();
    if let Ok(a) = obj.cast::<PyArray1<u64>>() {
        if in_place(a) {
            return Ok(a.clone());
        }
    }
    let np = py.import("numpy")?;
    let mut arr = np.call_method1("asarray", (obj,))?;
    // numpy infers float64 (or object) for a list of Python ints that do
    // not all fit int64, such as [1, 2**64-1] (or mixes numpy's uint64 with
    // ints): ask for uint64 outright then.
    let inferred: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    let listed = obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>();
    if (inferred == "f" || inferred == "O") && listed {
        let np_integer = np.getattr("integer")?;
        let mut all_ints = true;
        for item in obj.try_iter()? {
            let item = item?;
            all_ints &= item.is_instance_of::<PyInt>() || item.is_instance(&np_integer)?;
        }
        if all_ints {
            arr = np
                .call_method1("asarray", (obj, np.getattr("uint64")?))
                .map_err(|e| {
                    if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) {
                        ctx.value("an id out of range (ids are 0 to 2**64-1)")
                            .into_py(py)
                    } else {
                        e
                    }
                })?;
        }
    }
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    let size: usize = arr.getattr("size")?.extract()?;
    let dtype = arr.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    if size > 0 && kind != "i" && kind != "u" {
        return Err(ctx
            .type_error(format!("ids must be integers, not {}", dtype.str()?))
            .into_py(py));
    }
    if size > 0 && kind == "i" {
        let min: i64 = arr.call_method0("min")?.extract()?;
        if min < 0 {
            return Err(ctx
                .value(format!("id {min} (ids are 0 to 2**64-1)"))
                .into_py(py));
        }
    }
    if ndim > 1 {
        return Err(ctx
            .value(format!(
                "ids must be one id or a 1-D sequence of ids, not a {ndim}-D array"
            ))
            .into_py(py));
    }
    let arr = require(&arr, "uint64")?;
    let arr = if ndim == 0 {
        arr.call_method1("reshape", (1,))?
    } else {
        arr
    };
    Ok(arr.cast_into::<PyArray1<u64>>()?)
}

/// One id given as a Python int (or anything with `__index__`, such as a
/// numpy integer).
pub(crate) fn one_id(obj: &Bound<'_, PyAny>, ctx: &Ctx<'_>) -> Result<u64, PyErr> {
    let py = obj.py();
    match obj.extract::<u64>() {
        Ok(id) => Ok(id),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) => Err(ctx
            .value(format!("id {} (ids are 0 to 2**64-1)", obj.str()?))
            .into_py(py)),
        Err(_) => Err(ctx
            .type_error(format!(
                "an id must be an int, not {}",
                obj.get_type().name()?
            ))
            .into_py(py)),
    }
}

/// A str (taken as UTF-8) or bytes argument, as an attribute's name or
/// value may be given.
#[derive(FromPyObject)]
pub(crate) enum Bytes {
    Str(String),
    Raw(Vec<u8>),
}

impl Bytes {
    /// The bytes it stands for.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Self::Str(s) => s.into_bytes(),
            Self::Raw(b) => b,
        }
    }
}
