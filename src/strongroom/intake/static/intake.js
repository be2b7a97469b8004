// Resumable uploads when JavaScript runs: each file goes through tus (tus-js-client, served
// from this server). An interrupted upload resumes from the server's offset, in this browser
// (tus-js-client keeps the upload's address in this site's local storage until it completes).
"use strict";
(function () {
  var form = document.getElementById("upload-form");
  var input = document.getElementById("files");
  var list = document.getElementById("progress");
  if (!form || !window.tus || !tus.isSupported) { return; }
  document.getElementById("mode").textContent =
    "Отправка продолжится с места обрыва, если связь прервётся или вкладка закроется. · " +
    "An upload resumes where it stopped if the connection breaks or the tab closes.";

  function line(name) {
    var li = document.createElement("li");
    li.textContent = name + ": 0%";
    list.appendChild(li);
    return li;
  }

  function send(file) {
    var li = line(file.name);
    var upload = new tus.Upload(file, {
      endpoint: "/files",
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
      removeFingerprintOnSuccess: true,
      metadata: { filename: file.name, filetype: file.type || "application/octet-stream",
                  source: "browser" },
      onError: function (err) {
        li.textContent = file.name + ": остановлено, выберите файл снова, чтобы продолжить · " +
          "stopped; choose the file again to resume (" + err.message.split("\n")[0] + ")";
        li.dataset.state = "error";
      },
      onProgress: function (sent, total) {
        li.textContent = file.name + ": " + Math.floor(sent * 100 / total) + "%";
        li.dataset.sent = String(sent);
      },
      onSuccess: function () {
        li.textContent = file.name + ": получено · received";
        li.dataset.state = "done";
      }
    });
    upload.findPreviousUploads().then(function (previous) {
      if (previous.length) { upload.resumeFromPreviousUpload(previous[0]); }
      upload.start();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    for (var i = 0; i < input.files.length; i++) { send(input.files[i]); }
  });
}());
