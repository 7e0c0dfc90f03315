//! The thesis' table, one row per connection (the columns of tcplife, with bytes instead of
//! KiB): `PID COMM LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT RX_BYTES TX_BYTES MS`.

use super::Conn;

pub const HEADER: &str = "PID     COMM             LOCAL_IP         LOCAL_PORT REMOTE_IP        REMOTE_PORT RX_BYTES   TX_BYTES   MS";

/// One row. Columns are separated by whitespace; a command name is printed as the kernel has it
/// (it may itself contain spaces, as in tcplife).
pub fn row(c: &Conn) -> String {
    format!(
        "{:<7} {:<16} {:<16} {:<10} {:<16} {:<11} {:<10} {:<10} {:.2}",
        c.pid,
        c.comm,
        c.laddr.to_string(),
        c.lport,
        c.raddr.to_string(),
        c.rport,
        c.rx_bytes,
        c.tx_bytes,
        c.ms()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_with_the_header() {
        let c = Conn {
            start_ns: 1_000_000,
            end_ns: 13_345_678,
            rx_bytes: 5000,
            tx_bytes: 1234,
            pid: 4242,
            comm: "curl".into(),
            laddr: "127.0.0.1".parse().unwrap(),
            lport: 40000,
            raddr: "127.0.0.1".parse().unwrap(),
            rport: 80,
        };
        let r = row(&c);
        assert_eq!(
            r.split_whitespace().collect::<Vec<_>>(),
            ["4242", "curl", "127.0.0.1", "40000", "127.0.0.1", "80", "5000", "1234", "12.35"]
        );
        let col = |s: &str, name: &str| s.find(name).unwrap();
        assert_eq!(col(HEADER, "RX_BYTES"), col(&r, "5000"));
        assert_eq!(col(HEADER, "MS"), col(&r, "12.35"));
    }
}
