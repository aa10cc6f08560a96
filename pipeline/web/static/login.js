"use strict";
function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)fs_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const body = {user: f.user.value, password: f.password.value, token: f.token.value};
  const r = await fetch("/login", {method: "POST", credentials: "same-origin", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-Facestream-CSRF": csrf()}});
  if (r.ok) { location.href = "/"; return; }
  let msg = "login failed";
  try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
  document.getElementById("login-error").textContent = msg;
});
