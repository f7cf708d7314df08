"use strict";
/** A problem the user can fix: the panel shows its message as it is (it names the problem and the fix). */
class PanelError extends Error {
  constructor(message) {
    super(message);
    this.name = "PanelError";
  }
}

module.exports = { PanelError };
