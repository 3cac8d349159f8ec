package azure

import "crypto/rand"

func randRead(b []byte) { rand.Read(b) }
