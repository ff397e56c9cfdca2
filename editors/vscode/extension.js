// Starts `archdsl lsp` (setting archdsl.command) for .arch files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("archdsl").get("command");
  client = new LanguageClient("archdsl", "archdsl", { command, args },
                              { documentSelector: [{ scheme: "file", language: "arch" }] });
  client.start();
  context.subscriptions.push(client);
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
