"""Host bridges for video editors: one module per project format or scripting API (`hosts.BRIDGES`), the contract
they fulfil (`contract.HostBridge`), the edit rule (`edit`, standard library only) and safe project writes."""
