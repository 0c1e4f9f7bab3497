//! Redis glob patterns (`PSUBSCRIBE`): `*` any run of bytes, `?` one byte, `[abc]`,
//! `[^abc]`, `[a-z]` a class, `\x` the byte `x` itself.

/// True when `text` matches the Redis glob `pattern`.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    matches_bytes(pattern.as_bytes(), text.as_bytes())
}

fn matches_bytes(p: &[u8], t: &[u8]) -> bool {
    // iterative matcher with one backtracking point for the last `*` seen
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    // collapse runs of stars
                    while pi < p.len() && p[pi] == b'*' {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, ti));
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => {
                    if let Some((true, next)) = class(p, pi, t[ti]) {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        // mismatch: let the last star swallow one more byte
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches byte `c` against the class starting at `p[start] == b'['`: whether it
/// matched, and the index after the class. `None` for an unterminated class, which then
/// matches nothing (as in Redis, where it reaches the end of the pattern).
fn class(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == b'^';
    if negate {
        i += 1;
    }
    let mut hit = false;
    loop {
        if i >= p.len() {
            return None;
        }
        match p[i] {
            b']' => break,
            b'\\' if i + 1 < p.len() => {
                hit |= p[i + 1] == c;
                i += 2;
            }
            lo if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' => {
                let hi = p[i + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                hit |= (lo..=hi).contains(&c);
                i += 3;
            }
            x => {
                hit |= x == c;
                i += 1;
            }
        }
    }
    Some((hit != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_semantics() {
        let yes = [
            ("socket.io#/#*", "socket.io#/#"),
            ("socket.io#/#*", "socket.io#/#room#"),
            ("*", ""),
            ("a*b*c", "axxbyyc"),
            ("a*b*c", "abc"),
            ("h?llo", "hello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hbllo"),
            ("a\\*b", "a*b"),
            ("a[\\]]b", "a]b"),
            ("**x", "abcx"),
        ];
        for (p, t) in yes {
            assert!(matches(p, t), "{p:?} should match {t:?}");
        }
        let no = [
            ("socket.io#/#*", "socket.io#/chat#"),
            ("socket.io#/#*", "socket.io-request#/#"),
            ("a*b*c", "axxbyy"),
            ("h?llo", "hllo"),
            ("h[^e]llo", "hello"),
            ("h[a-b]llo", "hcllo"),
            ("a\\*b", "axb"),
            ("h[ae", "ha"),
            ("", "a"),
        ];
        for (p, t) in no {
            assert!(!matches(p, t), "{p:?} should not match {t:?}");
        }
    }
}
