//! The credentials `lannerctl` logs in with: `--user NAME`, and the password from
//! `--password-file FILE` or the `LANNER_PASSWORD` environment variable. There is no password
//! flag, because command lines are visible to every user of the machine (`ps`).

use std::path::Path;

use anyhow::{Context, bail};

/// The environment variable the password is read from when no `--password-file` is given.
pub const PASSWORD_ENV: &str = "LANNER_PASSWORD";

/// A user name and its password. No `Debug`: nothing may print the password by accident.
pub struct Login {
    pub user: String,
    pub password: String,
}

/// The login the flags ask for: none without `--user`; with it, the password from the file if
/// one is named (it wins over the environment), else from [`PASSWORD_ENV`].
pub fn from_flags(
    user: Option<String>,
    password_file: Option<&Path>,
) -> anyhow::Result<Option<Login>> {
    let Some(user) = user else {
        return Ok(None);
    };
    let password = match password_file {
        Some(path) => password_from_file(path)?,
        None => match std::env::var(PASSWORD_ENV) {
            Ok(password) if !password.is_empty() => password,
            Ok(_) | Err(std::env::VarError::NotPresent) => bail!(
                "--user {user} needs a password: give --password-file FILE or set {PASSWORD_ENV}"
            ),
            Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSWORD_ENV} is not valid UTF-8"),
        },
    };
    Ok(Some(Login { user, password }))
}

/// The first line of `path`, without its line end.
fn password_from_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    match text.lines().next() {
        Some(line) if !line.is_empty() => Ok(line.to_owned()),
        _ => bail!("the password file {} is empty", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_first_line_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        for (content, expected) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\nsecond line\n", "s3cret"),
            ("s3cret", "s3cret"),
        ] {
            std::fs::write(&path, content).unwrap();
            let login = from_flags(Some("app".into()), Some(&path))
                .unwrap()
                .unwrap();
            assert_eq!(
                (login.user.as_str(), login.password.as_str()),
                ("app", expected)
            );
        }
    }

    #[test]
    fn an_empty_or_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "\nsecond\n").unwrap();
        let empty = from_flags(Some("app".into()), Some(&path)).err().unwrap();
        assert!(empty.to_string().contains("is empty"), "{empty:#}");
        let missing = dir.path().join("nothing");
        let error = from_flags(Some("app".into()), Some(&missing))
            .err()
            .unwrap();
        assert!(format!("{error:#}").contains("nothing"), "{error:#}");
    }

    #[test]
    fn no_user_means_no_login() {
        assert!(from_flags(None, None).unwrap().is_none());
    }
}
