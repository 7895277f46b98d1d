"""Credential readers: the chip (PC/SC), the camera, serial 2D scanners, and their protocol
cores. Keyboard-wedge scanners type into the staff page and need no reader here."""
