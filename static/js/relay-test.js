// Campaign form: the relay fields show only for a Relay bot; "Test the connection" asks the server to open
// a WebSocket to the address typed (from the server, as calls will) and shows what happened.
(function () {
  "use strict";
  var fieldset = document.getElementById("relay-settings");
  if (!fieldset) return;
  var kind = document.getElementById("id_bot_kind");
  var button = document.getElementById("relay-test");
  var result = document.getElementById("relay-test-result");
  var form = fieldset.closest("form");

  function toggle() { fieldset.hidden = kind.value !== fieldset.dataset.botKind; }
  kind.addEventListener("change", toggle);
  toggle();

  button.addEventListener("click", function () {
    var body = new FormData();
    body.append("url", document.getElementById("id_relay_url").value);
    body.append("token", document.getElementById("id_relay_token").value);
    if (button.dataset.campaign) body.append("campaign", button.dataset.campaign);  // its stored token, if none typed
    button.disabled = true;
    result.className = "";
    result.textContent = "Connecting…";
    fetch(button.dataset.url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value},
    }).then(function (response) {
      if (!response.ok) throw new Error("the server answered HTTP " + response.status);
      return response.json();
    }).then(function (answer) {
      result.className = answer.ok ? "ok" : "error";
      result.textContent = answer.message;
    }).catch(function (error) {
      result.className = "error";
      result.textContent = "The test could not be run: " + error.message + ".";
    }).finally(function () { button.disabled = false; });
  });
})();
