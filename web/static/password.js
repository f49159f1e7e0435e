/*
 * web/static/password.js - the password page of a guest or upload link
 * (guest_password.html, upload_password.html).
 *
 * The page that answers a wrong password is that POST's own entry in the
 * browser's history: Reload would send the same wrong password again and
 * spend another attempt (with two attempts, a typo and F5 lock the link).
 * Replacing the entry with the page's own address makes it a GET, so
 * Reload and Back only show the form again.  (The right password is
 * answered with a redirect, 303, to a GET of its own.)
 */
"use strict";

history.replaceState(null, "", location.href);
