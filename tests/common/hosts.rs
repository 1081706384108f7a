//! Test host names on loopback: lines added to /etc/hosts for the test's lifetime, so that real
//! clients resolve the names an SNI listener routes by (this machine's resolver has no
//! `*.localhost` rule: nsswitch has no `myhostname`).

use std::sync::Mutex;

const HOSTS: &str = "/etc/hosts";
/// Every line this harness adds ends with it; lines left by a killed run are replaced.
const MARK: &str = "# kafka-gateway-tests";

/// Names currently added, with how many live guards want each.
static ADDED: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

/// While alive, `names` resolve to 127.0.0.1. Dropping the last guard of a name removes it.
pub struct LoopbackNames {
    names: Vec<String>,
}

impl LoopbackNames {
    pub fn add(names: &[String]) -> LoopbackNames {
        let mut added = ADDED.lock().unwrap_or_else(|p| p.into_inner());
        for n in names {
            match added.iter_mut().find(|(a, _)| a == n) {
                Some((_, count)) => *count += 1,
                None => added.push((n.clone(), 1)),
            }
        }
        write_hosts(&added);
        LoopbackNames {
            names: names.to_vec(),
        }
    }
}

impl Drop for LoopbackNames {
    fn drop(&mut self) {
        let mut added = ADDED.lock().unwrap_or_else(|p| p.into_inner());
        for n in &self.names {
            if let Some((_, count)) = added.iter_mut().find(|(a, _)| a == n) {
                *count -= 1;
            }
        }
        added.retain(|(_, count)| *count > 0);
        write_hosts(&added);
    }
}

/// Rewrites /etc/hosts as what it holds without this harness's lines, plus one line for `names`.
fn write_hosts(names: &[(String, usize)]) {
    let text = std::fs::read_to_string(HOSTS).expect("read /etc/hosts");
    let mut out: String = text
        .lines()
        .filter(|l| !l.ends_with(MARK))
        .map(|l| format!("{l}\n"))
        .collect();
    if !names.is_empty() {
        let list: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        out.push_str(&format!("127.0.0.1 {} {MARK}\n", list.join(" ")));
    }
    // In place (not a rename): /etc/hosts may be a bind mount.
    std::fs::write(HOSTS, out).unwrap_or_else(|e| {
        panic!(
            "cannot write {HOSTS} ({e}): the SNI tests need their test names to resolve to 127.0.0.1; run them as root or add the names yourself"
        )
    });
}
