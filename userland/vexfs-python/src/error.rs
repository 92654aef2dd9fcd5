//! Why a call failed, as the Python exception a program expects: an
//! `OSError` subclass chosen by errno (as Python's own `OSError(errno, ...)`
//! chooses it), or `ValueError` for what was wrong with the arguments.
//!
//! The message is the `vexfs` crate's `Display` (what `vexctl` prints after
//! `vexctl: `), and `str(exception)` is exactly that line: no `[Errno N]`
//! prefix. `.errno` is set on every exception this module raises (`None`
//! where no errno is involved, e.g. a path that is not on VexFS).

use std::io;

use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use vexfs::Errno;

/// What went wrong in a call, converted into a Python exception once the
/// call is back under the interpreter.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The library's error, with its message and errno.
    Lib(vexfs::Error),
    /// An argument no request can carry: `ValueError`, `errno` None.
    Value(String),
    /// An argument of the wrong type: `TypeError`.
    Type(String),
    /// A system call outside the library failed (mkdir, stat).
    Os {
        /// `None` when the error carries none.
        errno: Option<i32>,
        /// The whole line.
        message: String,
    },
}

impl From<vexfs::Error> for Failure {
    fn from(e: vexfs::Error) -> Self {
        Failure::Lib(e)
    }
}

impl Failure {
    /// A failed system call on `path`, phrased like the library's errors.
    pub(crate) fn io(path: &std::path::Path, what: &str, e: &io::Error) -> Self {
        let message = if what.is_empty() {
            format!("{}: {}", path.display(), vexfs::io_error_message(e))
        } else {
            format!("{}: {what}: {}", path.display(), vexfs::io_error_message(e))
        };
        Failure::Os {
            errno: e.raw_os_error(),
            message,
        }
    }

    /// The Python exception for this failure.
    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Lib(e) => lib_error(py, &e),
            Failure::Value(message) => value_error(py, message, None),
            Failure::Type(message) => PyTypeError::new_err(message),
            Failure::Os { errno, message } => os_error(py, errno, message),
        }
    }
}

/// The exception for an error of the `vexfs` crate.
pub(crate) fn lib_error(py: Python<'_>, e: &vexfs::Error) -> PyErr {
    let message = e.to_string();
    match e {
        vexfs::Error::InvalidArgument { .. } => value_error(py, message, None),
        vexfs::Error::Ioctl { errno, .. } if *errno == Errno::EINVAL => {
            value_error(py, message, Some(Errno::EINVAL as i32))
        }
        vexfs::Error::Ioctl { errno, .. } => os_error(py, Some(*errno as i32), message),
        vexfs::Error::Open { error, .. } => os_error(py, error.raw_os_error(), message),
        // Not on VexFS, not a regular file, another ABI version, and any
        // kind a newer crate adds: an OSError without an errno.
        _ => os_error(py, None, message),
    }
}

/// `ValueError(message)` with an `errno` attribute (EINVAL when the kernel
/// refused the request, None when it was refused before any ioctl).
pub(crate) fn value_error(py: Python<'_>, message: String, errno: Option<i32>) -> PyErr {
    let err = PyValueError::new_err(message);
    // Setting an attribute on a fresh ValueError cannot fail but for lack
    // of memory; the exception is still the right one without it.
    let _ = err.value(py).setattr("errno", errno);
    err
}

/// The `OSError` subclass Python maps `errno` to (`PermissionError` for
/// EACCES and EPERM, `FileNotFoundError` for ENOENT, `FileExistsError`,
/// `NotADirectoryError`, `BlockingIOError` for EAGAIN, ...; plain
/// `OSError` for the rest), with `errno` set and `message` as its only
/// argument, so that `str()` is the message alone.
pub(crate) fn os_error(py: Python<'_>, errno: Option<i32>, message: String) -> PyErr {
    let Some(code) = errno else {
        return PyOSError::new_err(message);
    };
    let build = || -> PyResult<PyErr> {
        // OSError(errno, strerror) picks the subclass; an instance of it
        // made from the message alone, with errno set afterwards, prints
        // as the message itself rather than "[Errno N] ...".
        let class = py
            .get_type::<PyOSError>()
            .call1((code, message.as_str()))?
            .get_type();
        let exc = class.call1((message.as_str(),))?;
        exc.setattr("errno", code)?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}
