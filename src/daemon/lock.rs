//! One daemon per table: a second `knockd` on the same table in the same network namespace
//! would fight the first over its chain. The lock is an abstract unix socket named after the
//! table: abstract names belong to the network namespace, exactly like the table, and the
//! kernel releases the name when the holder exits, however it exits. A second daemon connects
//! to it to learn the holder's pid.

use std::io;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

use nix::sys::socket::{getsockopt, sockopt};

/// Why the table could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error(
        "another knockd is running (pid {pid}) with table inet {table} in this network namespace: stop it first \
         (`kill {pid}`, or `systemctl stop knockd`)"
    )]
    Held {
        /// The table.
        table: String,
        /// The holder's pid, as the kernel reports it.
        pid: i32,
    },
    /// The socket could not be made.
    #[error("cannot lock table inet {table}: {source}")]
    Io {
        /// The table.
        table: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// The held lock of one table; dropping it releases the table.
pub struct TableLock {
    listener: UnixListener,
    table: String,
}

fn name(table: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(format!("knockd/inet/{table}"))
}

impl TableLock {
    /// Takes the lock of `table`, or says which pid holds it.
    pub fn take(table: &str) -> Result<TableLock, LockError> {
        let io = |source| LockError::Io { table: table.to_owned(), source };
        let addr = name(table).map_err(io)?;
        match UnixListener::bind_addr(&addr) {
            Ok(listener) => {
                listener.set_nonblocking(true).map_err(io)?;
                Ok(TableLock { listener, table: table.to_owned() })
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let holder = UnixStream::connect_addr(&addr).map_err(io)?;
                let pid = getsockopt(&holder.as_fd(), sockopt::PeerCredentials).map_err(|e| io(e.into()))?.pid();
                Err(LockError::Held { table: table.to_owned(), pid })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The table this lock holds.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Closes the connections of daemons that asked who holds the lock.
    pub fn answer(&self) {
        while let Ok((stream, _)) = self.listener.accept() {
            drop(stream);
        }
    }
}

impl AsFd for TableLock {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.listener.as_fd()
    }
}
